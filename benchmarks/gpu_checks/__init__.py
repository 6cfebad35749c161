"""The parts of benchmarks/gpu_check.py (its docstring says what each proves), one module per owner: `common` (the
run's `Setup`, a part's `Row`, shared helpers and fixtures), `collectives` (1), `training` (2a, 2b, 6), `data` (3),
`extraction` (4, 5), `sweep` (7), `metrics_job` (8), `sampling` (9), `scoring` (10, 11); `registry` lists them in
the table's order."""
