"""Optional packages whose import needs help beside this torch build: torchvision, which timm, open_clip
(metrics/vision_transformers.py) and diffusers (generators/diffusers_dit.py) import at module level."""

import sys

import torch

_torchvision_op_schemas = None  # the torch.library.Library holding them; its definitions last as long as it does


def import_torchvision():
    """torchvision, also where its C++ ops do not load (timm, open_clip and diffusers import it at module level, for
    parts distgan does not use).

    PyPI's torchvision 0.28.0, the release for torch 2.13, is built against torch's CUDA build: beside the CPU build
    its `_C` ops library does not load. torchvision tolerates that, except that its `_meta_registrations` registers
    fake kernels for `torchvision::nms` and `qnms` unconditionally and the import fails with "operator
    torchvision::nms does not exist" (an error torch's Inductor also expects: torch/_inductor/utils.py). Only then
    are those two schemas defined, without kernels (calling nms raises), and torchvision imported again; where its
    ops load, nothing is defined."""
    global _torchvision_op_schemas
    try:
        import torchvision
    except RuntimeError as error:
        if "torchvision::nms does not exist" not in str(error):
            raise
        for name in [name for name in sys.modules if name == "torchvision" or name.startswith("torchvision.")]:
            del sys.modules[name]  # the failed import's partial modules
        _torchvision_op_schemas = torch.library.Library("torchvision", "FRAGMENT")
        for op in ("nms", "qnms"):
            _torchvision_op_schemas.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        import torchvision
    return torchvision
