"""Ray Train workers record the device and collective backend distgan chooses; run by test_gpu_paths.py.

usage: ray_device_job.py OUT_DIR
Two jobs of two workers on a Ray instance of this machine that declares 4 (logical) GPUs:
- "cpu": `run_data_parallel` with CPU workers, whose process group Ray Train makes from what `launch` asks;
- "gpu": 2 GPUs per worker. Ray gives worker 0 GPUs 0,1 and worker 1 GPUs 2,3, and shows both workers all four
  (CUDA_VISIBLE_DEVICES=0,1,2,3): worker 1's device is cuda:2, not cuda:LOCAL_RANK = cuda:1 (worker 0's second
  GPU). No NCCL here: that job's group is gloo.
Each worker writes OUT_DIR/{job}-rank{r}.json.
"""

import json
import os
import sys
from pathlib import Path

import ray
import ray.train
import torch
import torch.distributed as dist
from ray.train.torch import TorchConfig, TorchTrainer

from distgan.train import launch
from distgan.train.launch import Launch, run_data_parallel


def probe(config: dict) -> None:
    """What a worker decides, on a node with as many CUDA devices as CUDA_VISIBLE_DEVICES lists."""
    from distgan.runtime import distributed

    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")  # Ray's: "" for a worker without GPUs
    # The GPUs Ray lists there, as a GPU node's CUDA would show them: the hardware this machine lacks.
    torch.cuda.is_available = lambda: bool(visible)
    torch.cuda.device_count = lambda: len(visible.split(",")) if visible else 0
    dist.is_nccl_available = lambda: bool(visible)  # a CUDA build of torch has NCCL
    device = distributed.local_device()
    seen = {
        "local_rank": int(os.environ["LOCAL_RANK"]),
        "cuda_visible_devices": visible,
        "device": str(device),
        "ray_device": str(ray.train.torch.get_device()),
        "group_backend": dist.get_backend(),
        "chosen_backend": distributed.collective_backend(device.type),
        "collective_device": str(distributed.collective_device()),
    }
    out = Path(config["out_dir"]) / f"{config['job']}-rank{dist.get_rank()}.json"
    out.write_text(json.dumps(seen))


def main(out_dir: str) -> None:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, num_gpus=4, include_dashboard=False, log_to_driver=False)
    storage = Path(out_dir) / "ray"
    cpu_workers = Launch(workers=2, cpus_per_worker=0.5, gpus_per_worker=0, storage_dir=storage, in_tune_trial=False)
    run_data_parallel(probe, {"out_dir": out_dir, "job": "cpu"}, launch=cpu_workers, name="cpu")
    # The GPU job cannot go through run_data_parallel: it would ask for NCCL, which this machine lacks.
    TorchTrainer(
        launch._under_ray_train,
        train_loop_config={"fn": probe, "config": {"out_dir": out_dir, "job": "gpu"}, "torch_threads": 1},
        torch_config=TorchConfig(backend="gloo"),
        scaling_config=ray.train.ScalingConfig(
            num_workers=2, use_gpu=True, resources_per_worker={"CPU": 0.5, "GPU": 2}
        ),
        run_config=ray.train.RunConfig(name="gpu", storage_path=str(storage)),
    ).fit()
    ray.shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
