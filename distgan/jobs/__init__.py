"""The sweep's data-parallel jobs: what runs on every rank of a job's workers (Ray Train, torchrun, or one process).

Each job is a typed, frozen dataclass of configs and absolute paths, and a worker function that takes it: GAN
training (`gan`), classifier training and evaluation (`classifier`), sampling a generator into shards (`sampling`),
and scoring a generated set or the real side in every feature space (`scoring`). `placement` says where each job of
a sweep runs; `stages` records where its ranks ran. `experiments/` composes them; `cli.py` runs them directly.
"""
