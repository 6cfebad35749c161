"""Process-group facts and the CPU/GPU choices (device, backend, autocast), made once, at setup, in one place.

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
from collections.abc import Callable
from typing import NoReturn

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from distgan.errors import ConfigError

# Set by a launcher that places its workers on devices itself (Ray Train, through train/launch.py): says which.
_placed_device: Callable[[], torch.device] | None = None

# "auto": bf16 autocast on GPUs, fp32 on CPUs; "bf16" or "fp32" force one (tests run the GPUs' bf16 path on CPUs).
PRECISION_ENV = "DISTGAN_PRECISION"


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def node_identities() -> list[str]:
    """Where each rank runs, in rank order: its Ray node id under Ray (distinct per node even where the nodes share
    a hostname, as in network namespaces), else its hostname. Collective: every rank calls it."""
    ray = sys.modules.get("ray")  # imported by the Ray Train worker that runs this process, if any
    own = ray.get_runtime_context().get_node_id() if ray is not None and ray.is_initialized() else socket.gethostname()
    return all_gather_objects(own)


def all_gather_objects(own: object) -> list:
    """Every rank's `own`, in rank order (a list of one without a process group). Collective."""
    if not is_distributed():
        return [own]
    everyone: list = [None] * world_size()
    dist.all_gather_object(everyone, own)
    return everyone


def local_device() -> torch.device:
    """This process's device, decided here and only here: under Ray Train the GPU that Ray assigned to the worker
    (Ray sets CUDA_VISIBLE_DEVICES, which may list the GPUs of all workers on the node or only this one's), else
    the GPU of this LOCAL_RANK (torchrun), else the CPU. Sets nothing (`select_device` does)."""
    if not torch.cuda.is_available():
        return torch.device("cpu")
    if _placed_device is not None:
        return _placed_device()
    local_rank, visible = int(os.environ.get("LOCAL_RANK", "0")), torch.cuda.device_count()
    if local_rank >= visible:
        raise ConfigError(
            f"LOCAL_RANK {local_rank} needs GPU {local_rank}, but this process sees {visible} "
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')}): start one process per GPU"
        )
    return torch.device("cuda", local_rank)


def place_devices_by(assigned: Callable[[], torch.device]) -> None:
    """Let a launcher that placed this worker (Ray Train) say which device it got: `local_device` returns it."""
    global _placed_device
    _placed_device = assigned


def select_device() -> torch.device:
    """`local_device()`, made the current CUDA device (what NCCL and `torch.device("cuda")` then use)."""
    device = local_device()
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The precision of training forwards on `device`: bf16 autocast on GPUs over fp32 weights, None (fp32) on
    CPUs, where bf16 is emulated and slower. DISTGAN_PRECISION=bf16|fp32 overrides it. Both engines follow it."""
    choice = os.environ.get(PRECISION_ENV, "auto")
    if choice not in ("auto", "bf16", "fp32"):
        raise ConfigError(f"{PRECISION_ENV} must be auto, bf16 or fp32 (got {choice!r})")
    if choice == "bf16" or (choice == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


def autocast(device: torch.device):
    """Autocast to `autocast_dtype(device)` on `device`; a no-op context where that is fp32."""
    dtype = autocast_dtype(device)
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def collective_backend(device_type: str) -> str:
    """The process group's backend for workers on `device_type` devices: NCCL between GPUs, gloo between CPUs.
    torchrun's and DeepSpeed's groups (`init_from_env`, `ensure_process_group`) and Ray Train's (`launch`). A torch
    built without NCCL (the CPU build, whose workers run on the CPU even where Ray accounts GPUs to them) uses gloo."""
    return "nccl" if device_type == "cuda" and dist.is_nccl_available() else "gloo"


def collective_device() -> torch.device:
    """Where a collective's tensors must be: the CPU when the default group serves CPU tensors (gloo, a world of
    one), else this process's GPU. An NCCL group (torchrun's, Ray Train's, DeepSpeed's) serves only CUDA tensors
    and refuses CPU ones ("No backend type associated with device type cpu")."""
    if not is_distributed():
        return torch.device("cpu")
    # get_backend_config() names the backend of each device type the group serves: "cpu:gloo,cuda:gloo" for gloo,
    # "cuda:nccl" for NCCL, as given for a mixed group ("cpu:gloo,cuda:nccl").
    served = {entry.split(":")[0] for entry in dist.get_backend_config().split(",")}
    return torch.device("cpu") if "cpu" in served else local_device()


def init_from_env() -> None:
    """Join the process group that torchrun describes in the environment (RANK, WORLD_SIZE, ...)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not is_distributed():
        dist.init_process_group(collective_backend(select_device().type))


def ensure_process_group() -> None:
    """A process group even in a world of one (DeepSpeed needs one)."""
    if is_distributed():
        return
    backend = collective_backend(select_device().type)
    if "MASTER_ADDR" in os.environ and "RANK" in os.environ:
        # A launcher (torchrun, Ray Train) described the world, possibly with its own store: use it.
        dist.init_process_group(backend)
        return
    with socket.socket() as probe:  # a free port, so that concurrent single-process runs do not collide
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
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
