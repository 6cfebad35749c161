"""Placement for every workers × GPUs choice, on a Ray instance that declares 2 GPUs (tests/declared_gpus_sweep.py):
1 worker × 1 GPU runs every job of a trial in the trial's process, which holds its GPU (a sampling job that asked Ray
for another GPU would wait for ever); 2 workers × 1 GPU run sampling, scoring and training on the trial's two workers;
4 workers × 1 GPU are refused before any trial."""

import json
import subprocess
import sys
from pathlib import Path

from helpers import USER_ENV

from distgan.layout import RESULT_FILE, SweepPaths

CLASS_CARRIER = """
import torch
from distgan.data.sources import load_split


class ClassCarrier:
    image_size, channels, knob = 16, 1, None

    def __init__(self, num_classes):
        real = load_split("digits", "train", image_size=16)
        self.images, self.labels = torch.from_numpy(real.images_NHWC), torch.from_numpy(real.labels_N)

    def sample(self, labels, knob_value, generator):
        return torch.stack([self.images[torch.nonzero(self.labels == k)[0, 0]] for k in labels.tolist()])


def make(num_classes, device):
    return ClassCarrier(num_classes)
"""


def test_every_workers_by_gpus_choice_finishes_or_is_refused_before_any_trial(quick_sweep, tmp_path):
    (tmp_path / "carrier.py").write_text(CLASS_CARRIER)
    out_json = tmp_path / "outcomes.json"
    script = Path(__file__).with_name("declared_gpus_sweep.py")
    results = quick_sweep[0].parent
    done = subprocess.run([sys.executable, str(script), str(results), f"{tmp_path}/carrier.py:make", str(out_json)],
                          capture_output=True, text=True, timeout=900, env=USER_ENV)  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    outcomes = json.loads(out_json.read_text())
    assert outcomes["one-worker-one-gpu"] == "finished" and outcomes["two-workers-one-gpu-each"] == "finished"
    assert outcomes["four-workers-one-gpu-each"].startswith("refused: a trial needs"), outcomes
    assert "4 GPUs" in outcomes["four-workers-one-gpu-each"]
    assert not SweepPaths(results, "four-workers-one-gpu-each").trials_dir.exists()
    for name, world in (("one-worker-one-gpu", 1), ("two-workers-one-gpu-each", 2)):
        result = json.loads((SweepPaths(results, name).trial_dir("generated") / RESULT_FILE).read_text())
        for stage in ("sample", "score", "train", "evaluate"):
            record = result["stages"][stage]
            assert record["world_size"] == world and len(record["ranks"]) == world, (name, stage, record)
            assert [rank["device"] for rank in record["ranks"]] == ["cpu"] * world  # no CUDA in this torch
        pids = {rank["pid"] for rank in result["stages"]["train"]["ranks"]}
        assert (result["driver"]["pid"] in pids) is (world == 1)  # one worker: the trial's own process
