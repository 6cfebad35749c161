"""The train layer's checks of a config: the engine it names is installed (this layer imports deepspeed), and a
trial's workers can be placed on the GPUs it asks for."""

import importlib.util

from distgan.config import EngineConfig, SweepConfig
from distgan.errors import ConfigError
from distgan.train.launch import check_gpus_per_worker

DEEPSPEED_INSTALL = "pip install --no-build-isolation -e '.[deepspeed]'"


def check_engine(engine: EngineConfig) -> None:
    """ConfigError naming --engine.backend when it is deepspeed and DeepSpeed is not installed."""
    if engine.backend == "deepspeed" and importlib.util.find_spec("deepspeed") is None:
        raise ConfigError(f"--engine.backend must be 'ddp' here: DeepSpeed is not installed ({DEEPSPEED_INSTALL})")


def check_resources(cfg: SweepConfig) -> None:
    """ConfigError naming --gpus-per-worker when a trial's several workers would share a GPU."""
    check_gpus_per_worker(cfg.workers_per_trial, cfg.gpus_per_worker)
