"""A few engine steps on real digits, run under torchrun by test_engine.py; rank 0 saves the weights.

The model has no BatchNorm, so that world size and batch split are the only differences between runs.
usage: engine_job.py OUT.pt BACKEND GLOBAL_BATCH GRAD_ACCUM_STEPS
"""

import sys

import torch
import torch.nn.functional as F
from torch import nn

from distgan.config import EngineConfig
from distgan.data.order import rank_indices
from distgan.data.sources import load_split
from distgan.data.transforms import to_model_input
from distgan.runtime import distributed
from distgan.train.engine import build_engine

NUM_STEPS = 6
# Gradients well above norm 1 (DeepSpeed's default clipping threshold, which DDP does not apply), so a backend
# that clipped would end elsewhere; the job checks the first step's norm.
LOSS_SCALE = 20.0


def main(out: str, backend: str, global_batch: int, accum: int) -> None:
    distributed.init_from_env()
    torch.use_deterministic_algorithms(True)
    distributed.seed_everything(0)
    module = nn.Sequential(
        nn.Conv2d(1, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 10)
    )
    world = distributed.world_size()
    micro = global_batch // (world * accum)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.05 / LOSS_SCALE, momentum=0.9, weight_decay=5e-4)
    engine = build_engine(
        module,
        optimizer,
        None,
        EngineConfig(backend=backend, grad_accum_steps=accum),
        device=torch.device("cpu"),
        micro_batch_size=micro,
    )
    train = load_split("digits", "train", image_size=16)
    images, labels = to_model_input(train.images_NHWC), torch.as_tensor(train.labels_N)
    indices = torch.from_numpy(
        rank_indices(len(labels), epoch=0, seed=0, rank=distributed.rank(), world_size=distributed.world_size())
    )

    def loss_fn(model, batch):
        return LOSS_SCALE * F.cross_entropy(model(images[batch]), labels[batch])

    first = indices[: micro * accum]
    grads = torch.autograd.grad(loss_fn(module, first), list(module.parameters()))
    assert torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])) > 2.0, "gradients too small to test"
    for step in range(NUM_STEPS):
        batch = indices[step * micro * accum : (step + 1) * micro * accum]
        engine.train_step(list(batch.split(micro)), loss_fn)
    if distributed.rank() == 0:
        torch.save(engine.module.state_dict(), out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    distributed.shutdown(wait_for_others=True)
    distributed.exit_process(0)
