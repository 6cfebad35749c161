"""Part 1 of benchmarks/gpu_check.py. NCCL in a world of 1: the trap, the collective device, a DDP step, the
evaluation counts and the extraction gather."""

import contextlib
import copy
import math
import socket

import torch
import torch.nn.functional as F

from .common import Row, Setup, check, patched

NO_BACKEND_FOR_CPU = "No backend type associated with device type cpu"  # what an NCCL group says to a CPU tensor


def init_world_of_one(backend: str) -> None:
    """A process group of one rank on a free local port (what `distributed.ensure_process_group` makes)."""
    import torch.distributed as dist

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)


@contextlib.contextmanager
def one_rank_as_two():
    """Run code written for a world of 2 in this world of 1: `distributed.world_size()` says 2, every all_reduce and
    all_gather goes through the real process group (so NCCL still refuses CPU tensors), and an all_gather's second
    slot receives this rank's tensor again. Yields the device type of every collective's tensor."""
    import torch.distributed as dist

    from distgan.runtime import distributed

    seen: list[str] = []
    all_reduce, all_gather = dist.all_reduce, dist.all_gather

    def spy_all_reduce(tensor, *args, **kwargs):
        seen.append(tensor.device.type)
        return all_reduce(tensor, *args, **kwargs)

    def spy_all_gather(tensor_list, tensor, *args, **kwargs):
        seen.append(tensor.device.type)
        work = all_gather(tensor_list[:1], tensor, *args, **kwargs)  # the group has one rank: one slot
        for slot in tensor_list[1:]:
            slot.copy_(tensor_list[0])
        return work

    with patched(dist, all_reduce=spy_all_reduce, all_gather=spy_all_gather):
        with patched(distributed, world_size=lambda: 2):
            yield seen


def part_nccl(setup: Setup, row: Row) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from distgan.metrics import extraction
    from distgan.metrics.classification import ClassificationCounts
    from distgan.models.classifiers import build_classifier
    from distgan.runtime import distributed

    device = setup.device
    if device.type == "cuda":
        torch.cuda.set_device(device)
        init_world_of_one("nccl")
        where = distributed.collective_device()
    else:  # gloo registered for the cuda device type alone refuses CPU tensors as NCCL does (tests/collective_job.py)
        init_world_of_one("cuda:gloo")
        with patched(torch.cuda, is_available=lambda: True, device_count=lambda: 1):
            where = distributed.collective_device()
        row.note("rehearsal: gloo for NCCL; the refusal from a gloo group that serves only cuda")
    try:
        dist.all_reduce(torch.ones(1))
        refusal = "no error"
    except RuntimeError as err:
        refusal = str(err)
    check(NO_BACKEND_FOR_CPU in refusal, f"a CPU all_reduce was not refused as expected ({refusal})")
    check(where.type == "cuda" and where.index in (0, None), f"collective_device() is {where}, not this rank's GPU")
    row.figure(f"CPU all_reduce refused; collective_device() {where}")
    if device.type == "cpu":
        dist.destroy_process_group()
        init_world_of_one("gloo")  # what the rest of the rehearsal can run on

    # A DDP step (gradients all-reduced through the group) equals a plain step on the same batch.
    torch.manual_seed(0)
    model = build_classifier("resnet20", 3, 10).to(device)
    plain = copy.deepcopy(model)
    ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    x = torch.randn(setup.sizes.batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (setup.sizes.batch,), device=device)
    for net in (ddp, plain):
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        optimizer.step()
    drift = max((a - b).abs().max().item() for a, b in zip(model.parameters(), plain.parameters(), strict=True))
    check(math.isfinite(loss.item()) and drift <= 1e-5, f"DDP step differs from a plain one by {drift:.2e}")
    row.figure(f"DDP step: loss {loss.item():.3f}, max Δw vs a plain step {drift:.1e}")

    # Evaluation counts and the extraction gather, called as in a world of 2: their tensors must reach the group on
    # the collective device (NCCL: the GPU), and a sum or gather over this one rank must give back what it holds.
    model.eval()
    counts = ClassificationCounts.empty(10)
    with torch.no_grad():
        counts.update(model(x), y)
    before = counts.scores()
    with one_rank_as_two() as counted:
        counts.all_reduce()
    check(counts.scores() == before and counts.total_K.device.type == "cpu", "the counts changed in the all_reduce")
    rows = [torch.randn(5, 10), torch.randn(3, 10)]
    with one_rank_as_two() as gathered_on:
        gathered = extraction._gather_in_order(torch.arange(8), rows, 10, 2)
    check(torch.equal(gathered, torch.cat(rows).repeat_interleave(2, dim=0)), "the gather mixed up rows")
    on = sorted(set(counted + gathered_on))
    check(on == [where.type if device.type == "cuda" else "cpu"], f"collectives ran on {on}")
    row.figure(f"counts all_reduce + gather: {len(counted) + len(gathered_on)} collectives on {on[0]}")
    row.note("world of 1: counts and gather called as a world of 2 calls them, the 2nd rank's share echoed")
    distributed.shutdown(wait_for_others=True)
