"""The loss curves of a trained GAN (its `losses.csv`, written by the GAN job): D and G losses per iteration, as
the NYU study read each run, and AC-GAN's class losses or WGAN-GP's gradient penalty beside them."""

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on cluster nodes
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from distgan.analysis.figures import save_figure  # noqa: E402

# A GAN job writes losses.csv (layout.LOSSES_FILE) beside generator.pt; gan and gan-test trials copy it into their
# directory, where the report draws losses.png.
LOSSES_FIGURE = "losses.png"
MAIN_CURVES = ("d_loss", "g_loss")  # the left panel; any other column goes to the right one
LABELS = {
    "d_loss": "D loss",
    "g_loss": "G loss",
    "d_class_loss": "D class loss (CE real + CE fake)",
    "g_class_loss": "G class loss (CE fake)",
    "gradient_penalty": "gradient penalty (before λ)",
}


def read_loss_curves(path: Path) -> dict[str, np.ndarray]:
    """losses.csv as {column: values}: `iteration` (int) and each loss (float64)."""
    with Path(path).open(newline="") as source:
        rows = list(csv.DictReader(source))
    if not rows:
        return {}
    return {
        name: np.array([row[name] for row in rows], dtype=np.int64 if name == "iteration" else np.float64)
        for name in rows[0]
    }


def smoothed(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over `window` iterations (fewer at the start), the same length as `values`."""
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (cumulative[ends] - cumulative[starts]) / (ends - starts)


def loss_curves_figure(csv_path: Path, png_path: Path, *, title: str | None = None) -> None:
    """Draw losses.csv to png_path (atomically): D and G loss per iteration on the left, the other columns (class
    losses, gradient penalty) on the right when there are any; faint lines are the per-iteration values, solid ones
    their trailing mean over 1 % of the run (at least one iteration)."""
    curves = read_loss_curves(csv_path)
    iteration = curves.pop("iteration", np.array([], dtype=np.int64))
    panels = [[name for name in MAIN_CURVES if name in curves]]
    panels += [[name for name in curves if name not in MAIN_CURVES]] if len(curves) > len(panels[0]) else []
    window = max(1, len(iteration) // 100)
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 3.8), layout="constrained", squeeze=False)
    for ax, names in zip(axes[0], panels, strict=True):
        for name, color in zip(names, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False):
            ax.plot(iteration, curves[name], color=color, alpha=0.25, linewidth=0.8)
            ax.plot(iteration, smoothed(curves[name], window), color=color, label=LABELS.get(name, name))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("G iteration")
        ax.set_ylabel("loss")
        ax.legend(loc="best", fontsize=8)
    fig.suptitle(title or f"GAN losses ({Path(csv_path).parent.name or csv_path})")
    save_figure(fig, Path(png_path))
