"""Sweeps on a Ray instance of this machine that declares 2 GPUs: Ray's accounting of them is real, the code runs on
the CPU (this torch has no CUDA: every rank's device is the CPU, its process group gloo). Run by
tests/test_declared_gpus.py.

usage: declared_gpus_sweep.py RESULTS_DIR GENERATOR_TARGET OUT_JSON
RESULTS_DIR: the main job's (its real shards, domain extractor and real sides are cache hits).
Runs a replacement sweep with 1 worker × 1 GPU, then with 2 workers × 1 GPU each, then asks for 4 workers × 1 GPU
(a trial the cluster can never hold); writes {sweep: "finished" | "refused: <message>"} to OUT_JSON.
"""

import json
import sys

import ray

import distgan.sweep
from distgan.errors import DistganError

results_dir, target, out_json = sys.argv[1:4]
COMMON = ["--quick", "--results-dir", results_dir, "--generator.kind", "python", "--generator.target", target,
          "--include-real", "false", "--classifier.epochs", "1"]  # fmt: skip
SWEEPS = {
    "one-worker-one-gpu": ["--workers-per-trial", "1", "--cpus-per-worker", "0.5", "--gpus-per-worker", "1"],
    # Another seed: its own synthetic set (the first sweep's is cached under the same results directory).
    "two-workers-one-gpu-each": [
        "--workers-per-trial",
        "2",
        "--cpus-per-worker",
        "0.5",
        "--gpus-per-worker",
        "1",
        "--sample.seed",
        "1",
    ],
    "four-workers-one-gpu-each": ["--workers-per-trial", "4", "--cpus-per-worker", "0.25", "--gpus-per-worker", "1"],
}

ray.init(address="local", num_cpus=2, num_gpus=2, include_dashboard=False)
outcomes = {}
for name, flags in SWEEPS.items():
    cfg, _ = distgan.sweep.parse_config([*COMMON, *flags, "--name", name])
    try:
        distgan.sweep.run(cfg)
        outcomes[name] = "finished"
    except DistganError as err:
        outcomes[name] = f"refused: {err}"
ray.shutdown()
with open(out_json, "w") as out:
    json.dump(outcomes, out)
