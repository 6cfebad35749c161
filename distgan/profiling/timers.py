"""Per-step time waiting for data against time computing, for training loops.

timer = StepTimer(device)
for step in range(num_steps):
    with timer.data():
        batch = next(batches)
    with timer.compute():   # one compute block per step: it closes the step
        loss = train_step(batch)
metrics |= timer.summary()  # data_wait_frac, num_steps, step_time_mean_s, ...
"""

import time
from contextlib import contextmanager


class StepTimer:
    """Accumulates wall time inside `data()` and `compute()` blocks; each `compute()` exit ends one step.

    CUDA kernels run asynchronously: without a synchronisation the compute block would end when the kernels are
    queued and their run time would be charged to the next data wait. So on a CUDA device `compute()` calls
    `torch.cuda.synchronize` before stopping its clock (a host sync per step: it removes the overlap of the next
    batch's loading with the current step's kernels, which is the price of an honest split; `synchronize=False`
    keeps the overlap and measures only host time). On CPU there is nothing to wait for.
    """

    def __init__(self, device=None, synchronize: bool = True) -> None:
        # device: a torch.device or its string ("cuda:0", "cpu"); torch is imported only when a sync is needed.
        device_type = getattr(device, "type", str(device).split(":")[0])
        self._sync_device = device if synchronize and device_type == "cuda" else None
        self.data_s: list[float] = []  # per finished step: seconds in data() blocks
        self.compute_s: list[float] = []  # per finished step: seconds in compute() blocks (synchronised)
        self._pending_data_s = 0.0  # data() time of the step in progress

    @contextmanager
    def data(self):
        """Time spent fetching the next batch (loader wait, host→device copy)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self._pending_data_s += time.perf_counter() - start

    @contextmanager
    def compute(self):
        """Time spent in forward/backward/optimizer steps; on exit the step is complete."""
        start = time.perf_counter()
        try:
            yield
        finally:
            if self._sync_device is not None:
                import torch

                torch.cuda.synchronize(self._sync_device)  # note: a CPU-GPU sync point, on purpose
            self.compute_s.append(time.perf_counter() - start)
            self.data_s.append(self._pending_data_s)
            self._pending_data_s = 0.0

    @property
    def num_steps(self) -> int:
        return len(self.compute_s)

    @property
    def data_wait_frac(self) -> float:
        """Fraction of step time spent waiting for data (nan before the first step)."""
        total = sum(self.data_s) + sum(self.compute_s)
        return sum(self.data_s) / total if total > 0 else float("nan")

    def summary(self) -> dict:
        """Ray-Tune-ready scalars: data_wait_frac, num_steps, step_time_mean_s, data_wait_s, compute_s."""
        data_s, compute_s = sum(self.data_s), sum(self.compute_s)
        return {
            "data_wait_frac": self.data_wait_frac,
            "num_steps": self.num_steps,
            "step_time_mean_s": (data_s + compute_s) / self.num_steps if self.num_steps else float("nan"),
            "data_wait_s": data_s,
            "compute_s": compute_s,
        }
