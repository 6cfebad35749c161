"""One engine, two backends: a plain module and its optimizer stepped data-parallel by PyTorch DDP or
DeepSpeed (ZeRO 0/1/2, optional optimizer offload). Training loops call `train_step`, and the
checkpoint module calls `save`/`load`; neither knows the backend. The only importer of deepspeed
(parallelism is applied to a model, not built into it).

Precision is the same on both: fp32 weights and optimizer, forwards (the loss function) under the autocast that
`distributed.autocast_dtype` chooses (bf16 on GPUs). DeepSpeed's own "bf16" mode is not used: it casts the
weights to bf16 but not the inputs, and the GAN's losses call one engine's plain module from the other's.
"""

import argparse
import logging
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from distgan.config import EngineConfig
from distgan.runtime import distributed
from distgan.runtime.atomic import load_plain
from distgan.train import host_memory

LossFn = Callable[[nn.Module, object], torch.Tensor]  # (forward module, micro-batch) -> mean loss


class DdpEngine:
    """PyTorch DDP (or the bare module in a world of one); gradient accumulation with `no_sync`."""

    def __init__(self, module: nn.Module, optimizer, scheduler, *, device: torch.device):
        self.module, self.device = module, device
        self.model = distributed.parallelize(module, device)  # what forward passes go through
        self.optimizer, self.scheduler = optimizer, scheduler

    def train_step(self, micro_batches: Sequence, loss_fn: LossFn) -> torch.Tensor:
        """One optimizer step over the micro-batches; returns their mean loss (detached, no host sync)."""
        total = torch.zeros((), device=next(self.module.parameters()).device)
        for i, batch in enumerate(micro_batches):
            # Gradients are all-reduced once, on the last micro-batch.
            defer = isinstance(self.model, DistributedDataParallel) and i < len(micro_batches) - 1
            with self.model.no_sync() if defer else nullcontext():
                with distributed.autocast(self.device):
                    loss = loss_fn(self.model, batch)
                (loss / len(micro_batches)).backward()
            total += loss.detach()
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total / len(micro_batches)

    def save(self, directory: Path) -> None:
        """Model, optimizer and scheduler (identical on all ranks): rank 0 writes them."""
        if distributed.rank() == 0:
            directory.mkdir(parents=True, exist_ok=True)
            state = {"module": self.module.state_dict(), "optimizer": self.optimizer.state_dict()}
            if self.scheduler is not None:
                state["scheduler"] = self.scheduler.state_dict()
            torch.save(state, directory / "engine.pt")

    def load(self, directory: Path) -> None:
        state = load_plain(directory / "engine.pt")
        self.module.load_state_dict(state["module"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])


class DeepSpeedEngine:
    """`deepspeed.initialize` around the same module, torch optimizer and scheduler; DeepSpeed does the
    all-reduce (or ZeRO partitioning), accumulation and scheduler stepping, and its own checkpoints."""

    def __init__(
        self, module: nn.Module, optimizer, scheduler, *, cfg: EngineConfig, device: torch.device, micro_batch_size: int
    ):
        import deepspeed

        logging.getLogger("DeepSpeed").setLevel(logging.WARNING)
        distributed.ensure_process_group()
        deepspeed.init_distributed(dist_backend=dist.get_backend())  # the group that exists, whoever made it
        self.device = device
        autocast_dtype = distributed.autocast_dtype(device)
        ds_config = {
            "train_micro_batch_size_per_gpu": micro_batch_size,
            "gradient_accumulation_steps": cfg.grad_accum_steps,
            "zero_optimization": {"stage": cfg.zero_stage}
            | ({"offload_optimizer": {"device": "cpu"}} if cfg.offload_optimizer else {}),
            # DeepSpeed's forward turns off an autocast it was not configured with: configure the same one (under
            # ZeRO, DeepSpeed then also reduces the gradients of linear and conv weights in that dtype).
            "torch_autocast": {"enabled": autocast_dtype is not None, "dtype": str(autocast_dtype or torch.float32)},
            # DeepSpeed clips the gradient norm at 1.0 unless told otherwise; DDP does not clip, and both
            # backends must take the same step (found by bench_engine.py: weights 0.08 apart after 24 steps).
            "gradient_clipping": 0.0,
            # Our optimizer is a torch one (no JIT-compiled fused Adam); DeepSpeed asks us to say so.
            "zero_allow_untested_optimizer": True,
            "steps_per_print": 2**31 - 1,
        }
        self.model, self.optimizer, _, self.scheduler = deepspeed.initialize(
            # device_rank: our device, not DeepSpeed's default of LOCAL_RANK (Ray Train assigns its own).
            args=argparse.Namespace(device_rank=device.index or 0),
            model=module,
            optimizer=optimizer,
            lr_scheduler=scheduler,
            config=ds_config,
        )
        self.module = self.model.module

    def train_step(self, micro_batches: Sequence, loss_fn: LossFn) -> torch.Tensor:
        total = torch.zeros((), device=self.model.device)
        for batch in micro_batches:
            # The loss function's own work (the GAN's calls of the other engine's module, the loss) under the
            # autocast the engine's forward uses, so that its bf16 outputs meet bf16 compute.
            with distributed.autocast(self.device):
                loss = loss_fn(self.model, batch)
            self.model.backward(loss)  # scaled by 1/accumulation steps inside
            self.model.step()  # steps optimizer and scheduler at the accumulation boundary
            total += loss.detach()
        return total / len(micro_batches)

    def save(self, directory: Path) -> None:
        """DeepSpeed's own checkpoint (model, ZeRO-partitioned optimizer, scheduler); every rank calls it."""
        self.model.save_checkpoint(str(directory.parent), tag=directory.name, save_latest=False)

    def load(self, directory: Path) -> None:
        self.model.load_checkpoint(str(directory.parent), tag=directory.name)


Engine = DdpEngine | DeepSpeedEngine


def build_engine(
    module: nn.Module, optimizer, scheduler, cfg: EngineConfig, *, device: torch.device, micro_batch_size: int
) -> Engine:
    """The engine that cfg.backend names, around a plain module already built identically on every rank."""
    host_memory.keep_freed_memory()
    if cfg.backend == "deepspeed":
        return DeepSpeedEngine(
            module.to(device), optimizer, scheduler, cfg=cfg, device=device, micro_batch_size=micro_batch_size
        )
    return DdpEngine(module, optimizer, scheduler, device=device)
