"""Sample a small generator into shards, run in-process by test_sampling.py or on 2 gloo ranks under torchrun.

usage: sampling_job.py OUT_DIR LOG_DIR    each rank writes LOG_DIR/rank{r}.json: the seeds of the generators it drew
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch

from distgan.generators import LoadedGenerator, open_generator
from distgan.generators.sampling import sample_to_shards
from distgan.runtime import distributed

NUM_CLASSES = 5
CLASS_NAMES = tuple(f"class{k}" for k in range(NUM_CLASSES))
LABELS_N = np.random.default_rng(0).integers(0, NUM_CLASSES, 300)
SEED, KNOB_VALUE, SHARD_SIZE, BATCH_SIZE = 7, 0.5, 64, 24  # 5 shards (64 × 4, 44); 3 batches per full shard
PROVENANCE = {"kind": "synthetic"}
TARGET = f"{Path(__file__).resolve()}:ClassColouredNoise"  # the `python` kind's --generator.target


class ClassColouredNoise:
    """A generator of the contract: 8×8 images of a colour per class plus uniform noise scaled by the knob.

    It remembers the seed of each torch.Generator it is handed (which shard it samples) and can fail on a given call,
    as a job killed in the middle would."""

    image_size, channels, knob = 8, 3, "truncation"

    def __init__(self, *, num_classes: int = NUM_CLASSES, device: torch.device = torch.device("cpu"), fail_on_call=0):
        self.colours_K3 = torch.linspace(30, 220, num_classes * 3).reshape(num_classes, 3)
        self.device, self.fail_on_call, self.num_calls, self.seeds = device, fail_on_call, 0, []

    def sample(self, labels: torch.Tensor, knob_value: float | None, generator: torch.Generator) -> torch.Tensor:
        self.num_calls += 1
        if self.num_calls == self.fail_on_call:
            raise RuntimeError(f"generator failed on call {self.num_calls}")
        if generator.initial_seed() not in self.seeds:
            self.seeds.append(generator.initial_seed())
        noise = torch.rand(len(labels), 8, 8, 3, generator=generator) * 60 - 30
        images = self.colours_K3[labels][:, None, None, :] + knob_value * noise
        return images.round().clamp(0, 255).to(torch.uint8).to(self.device)


def open_noise(*, fail_on_call: int = 0) -> LoadedGenerator:
    """ClassColouredNoise opened as a user's generator is: `--generator.kind python --generator.target TARGET`."""
    loaded = open_generator("python", TARGET, num_classes=NUM_CLASSES, device=torch.device("cpu"))
    loaded.generator.fail_on_call = fail_on_call
    return loaded


def sample(out_dir: Path, loaded: LoadedGenerator, *, knob_value: float = KNOB_VALUE) -> dict:
    """The job every test runs: LABELS_N at the module's settings into out_dir."""
    return sample_to_shards(
        loaded,
        LABELS_N,
        CLASS_NAMES,
        knob_value,
        seed=SEED,
        out_dir=out_dir,
        shard_size=SHARD_SIZE,
        provenance=PROVENANCE,
        batch_size=BATCH_SIZE,
    )


def main(out_dir: str, log_dir: str) -> None:
    distributed.init_from_env()
    loaded = open_noise()
    sample(Path(out_dir), loaded)
    (Path(log_dir) / f"rank{distributed.rank()}.json").write_text(json.dumps({"seeds": loaded.generator.seeds}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
    distributed.shutdown(wait_for_others=True)
    distributed.exit_process(0)
