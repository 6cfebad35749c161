"""Pixel conventions shared by every model: uint8 NHWC on disk, float NCHW in [-1, 1] in networks."""

import numpy as np
import torch
import torch.nn.functional as F


def to_model_input(images_NHWC: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W, C) → float32 (N, C, H, W) in [-1, 1]."""
    images = torch.as_tensor(images_NHWC)
    return images.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def to_uint8_images(x_NCHW: torch.Tensor) -> np.ndarray:
    """float (N, C, H, W) in [-1, 1] → uint8 (N, H, W, C), rounding to the nearest level."""
    x = ((x_NCHW.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def random_crop_flip(x_NCHW: torch.Tensor, *, padding: int, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """Training augmentation: pad with black (−1) and crop back at a random offset; optional mirror."""
    num, _, height, width = x_NCHW.shape
    out = x_NCHW
    if padding > 0:
        padded = F.pad(x_NCHW, (padding,) * 4, value=-1.0)
        offsets = torch.randint(0, 2 * padding + 1, (num, 2), generator=generator).tolist()
        out = torch.stack([padded[i, :, dy : dy + height, dx : dx + width] for i, (dy, dx) in enumerate(offsets)])
    if flip:
        mirror = torch.rand(num, generator=generator) < 0.5
        out = torch.where(mirror[:, None, None, None], out.flip(3), out)
    return out
