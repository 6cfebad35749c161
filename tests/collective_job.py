"""Classifier evaluation and the feature gather on 2 ranks, run under torchrun by test_gpu_paths.py.

usage: collective_job.py BACKEND MODEL.pt OUT_DIR
BACKEND "gloo" serves CPU tensors: each rank writes its scores and extraction to OUT_DIR/rank{r}.pt.
BACKEND "cuda:gloo" serves only the cuda device type, as NCCL does: CPU tensors are refused there. This machine has
no GPU, so no collective can complete in that group; each rank records the collective device chosen and how each
collective failed (OUT_DIR/rank{r}.json).
"""

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from distgan.data.sources import load_split
from distgan.metrics import extraction
from distgan.metrics.extractors import wrap_model
from distgan.models.classifiers import load_classifier
from distgan.runtime import distributed
from distgan.train.classifier import evaluate_classifier

BATCH_SIZE = 50  # extraction chunks: ranks take interleaved chunks of the 360 test images


def error_of(call) -> str:
    try:
        call()
    except Exception as err:  # recorded for the test to judge
        return f"{type(err).__name__}: {err}"
    return "no error"


def main(backend: str, model_path: str, out_dir: str) -> None:
    only_cuda = backend == "cuda:gloo"
    if only_cuda:
        # The GPUs an NCCL world would have (one per local rank): the hardware this machine lacks.
        torch.cuda.is_available = lambda: True
        torch.cuda.device_count = lambda: 2
    dist.init_process_group(backend)
    rank, out = distributed.rank(), Path(out_dir)
    test = load_split("digits", "test", image_size=16)
    model = load_classifier(Path(model_path))
    if only_cuda:
        index, rows = torch.arange(3), [torch.ones(3, 10)]
        found = {
            "collective_device": str(distributed.collective_device()),
            "cpu_all_reduce": error_of(lambda: dist.all_reduce(torch.ones(1))),
            "evaluate": error_of(lambda: evaluate_classifier(model, test)),
            "gather": error_of(lambda: extraction._gather_in_order(index, rows, 10, 2)),
        }
        (out / f"rank{rank}.json").write_text(json.dumps(found))
        return
    source = extraction.ImageSource.from_array(test.images_NHWC, test.labels_N)
    extracted = extraction.extract(
        wrap_model("domain", model), source, batch_size=BATCH_SIZE, keep_logits=True, keep_features=True
    )
    found = {
        "collective_device": str(distributed.collective_device()),
        "scores": evaluate_classifier(model, test),
        "logits_NK": extracted.logits_NK,
        "feats_ND": extracted.feats_ND,
        "count": extracted.stats.count,
        "sum_D": extracted.stats.sum_D,
    }
    torch.save(found, out / f"rank{rank}.pt")


if __name__ == "__main__":
    main(*sys.argv[1:4])
    # No collective completes in the cuda-only group (nor can its barrier): each rank failed alone, at home.
    distributed.shutdown(wait_for_others=sys.argv[1] == "gloo")
    distributed.exit_process(0)
