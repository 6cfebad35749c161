"""The arithmetic a pretrained generator (the `biggan` and `diffusers` kinds) samples in, chosen once when it is opened.

The choice is the one training makes (`distributed.autocast_dtype`; DISTGAN_PRECISION=auto|bf16|fp32): on a GPU that
computes bf16 natively (Ampere and later), bf16 autocast over the fp32 weights, and TF32 for the matmuls autocast
leaves in fp32; fp32 on CPUs (where bf16 is emulated and slower) unless bf16 is asked for; fp32 on older GPUs. Its
name goes into the set's provenance["sampling"]["precision"] (and from there into result.json's `sampling`): a set
sampled in bf16 is not the set sampled in fp32.
"""

import contextlib
from dataclasses import dataclass

import torch

from distgan.runtime import distributed


@dataclass(frozen=True)
class Precision:
    """Autocast dtype (None: plain fp32) and whether fp32 matmuls may use TF32 tensor cores."""

    autocast_dtype: torch.dtype | None
    tf32: bool

    @property
    def name(self) -> str:
        """What a set records: "fp32", "bf16" (autocast) or "bf16+tf32"."""
        base = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.autocast_dtype]
        return f"{base}+tf32" if self.tf32 else base

    @contextlib.contextmanager
    def applied(self, device: torch.device):
        """Run the block in this arithmetic on `device`; the process's matmul precision is restored after it."""
        matmul_precision = torch.get_float32_matmul_precision()
        if self.tf32:
            torch.set_float32_matmul_precision("high")  # TF32; convolutions use TF32 by default (cudnn)
        try:
            if self.autocast_dtype is None:
                yield
            else:
                with torch.autocast(device.type, dtype=self.autocast_dtype):
                    yield
        finally:
            torch.set_float32_matmul_precision(matmul_precision)


def sampling_precision(device: torch.device) -> Precision:
    """The arithmetic of sampling on `device` (module docstring)."""
    dtype = distributed.autocast_dtype(device)
    if device.type == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
        dtype = None  # pre-Ampere GPUs emulate bf16 (slower than fp32) and have no TF32
    return Precision(dtype, tf32=dtype is not None and device.type == "cuda")
