"""Process-group facts and the CPU/GPU choices, made in one place (STYLE §6–8).

One process is a world of size 1: everything here works without a process group. Launchers
(torchrun, Ray Train's TorchTrainer) create the group; this module only reads it.
"""

import contextlib
import gc
import logging
import os
import random
import socket
import sys
from typing import NoReturn

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def select_device() -> torch.device:
    """The GPU of this local rank when CUDA is present, else the CPU."""
    if not torch.cuda.is_available():
        return torch.device("cpu")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


def autocast():
    """bf16 autocast on GPUs; on CPUs a no-op context (fp32), as DeepSpeed's bf16 switch follows the same rule."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if torch.cuda.is_available() else contextlib.nullcontext()


def collective_backend() -> str:
    """NCCL between GPUs, gloo on CPUs."""
    return "nccl" if torch.cuda.is_available() else "gloo"


def init_from_env() -> None:
    """Join the process group that torchrun describes in the environment (RANK, WORLD_SIZE, ...)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not is_distributed():
        dist.init_process_group(collective_backend())


def ensure_process_group() -> None:
    """A process group even in a world of one (DeepSpeed needs one)."""
    if is_distributed():
        return
    if "MASTER_ADDR" in os.environ and "RANK" in os.environ:
        # A launcher (torchrun, Ray Train) described the world, possibly with its own store: use it.
        dist.init_process_group(collective_backend())
        return
    with socket.socket() as probe:  # a free port, so that concurrent single-process runs do not collide
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dist.init_process_group(collective_backend(), init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    for name, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1")):  # what DeepSpeed reads
        os.environ.setdefault(name, value)


def shutdown(*, wait_for_others: bool) -> None:
    """Destroy the process group; after a barrier on success, so that no rank leaves while another
    still talks (a failing rank must not wait: the others may never arrive)."""
    if is_distributed():
        if wait_for_others:
            dist.barrier()
        # Free unreachable wrappers first (a DDP reducer in a reference cycle holds the group): the group's gloo
        # threads then end here, not in the interpreter's teardown, where a rank has aborted with "terminate
        # called without an active exception" (rarely; pytorch/pytorch#179291 describes the teardown race).
        gc.collect()
        dist.destroy_process_group()


def exit_process(code: int) -> NoReturn:
    """End this process with `code`. A worker of a multi-process world (its group destroyed by `shutdown`) leaves
    without the interpreter's teardown, where gloo's threads have aborted a rank after its work was done."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(code)
    sys.exit(code)


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) alike on every rank."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def parallelize(model: nn.Module, device: torch.device) -> nn.Module:
    """Move a plain module to the device and wrap it in DDP when there is more than one rank."""
    model = model.to(device)
    if world_size() == 1:
        return model
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model
