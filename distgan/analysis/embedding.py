"""A t-SNE of real against generated images, as the NYU study looked at each trained GAN: both sets' features in the
metrics' leading feature space, embedded together in 2-D (openTSNE, seeded), coloured by class, real and generated
told apart by marker. A trial computes the embedding (it has the features) and writes it as `tsne.csv`; the report
draws `tsne.png` from that file alone, so a rebuild needs no model and gives the same figure."""

import csv
import io
from pathlib import Path

import numpy as np

from distgan.data.order import evenly_spread_indices
from distgan.runtime.atomic import write_text_atomic

EMBEDDING_NAME, EMBEDDING_FIGURE = "tsne.csv", "tsne.png"  # in the trial directory
POINTS_PER_SIDE = 1000  # real and generated images embedded, each at most: 2,000 points (~7 s on one CPU core)
PCA_DIMS = 50  # wider features are projected onto their first 50 principal components first (van der Maaten's
# usual preprocessing): the neighbour search and the run cost the same in any feature space
PERPLEXITY = 30.0  # openTSNE's default; lowered to (N − 1) / 3 for fewer than 91 points
SOURCES = ("real", "generated")
COLUMNS = ("source", "label", "class", "x", "y")


def principal_components(feats_ND: np.ndarray, num_dims: int) -> np.ndarray:
    """feats_ND centred and projected onto its first `num_dims` principal directions (all of them if fewer)."""
    centred = feats_ND - feats_ND.mean(axis=0)
    if feats_ND.shape[1] <= num_dims:
        return centred
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    return centred @ components[:num_dims].T


def tsne_embedding(
    real_ND: np.ndarray,
    real_labels_N: np.ndarray,
    fake_ND: np.ndarray,
    fake_labels_N: np.ndarray,
    *,
    seed: int,
    points_per_side: int = POINTS_PER_SIDE,
) -> dict[str, np.ndarray]:
    """A 2-D t-SNE of up to `points_per_side` real and as many generated feature vectors (the same number of each,
    spread evenly over each set), embedded together: {"source": 'real' | 'generated' (N,), "label" (N,) int,
    "xy_N2" (N, 2) float64}. Deterministic for a seed: one thread, Barnes-Hut gradients, PCA initialisation."""
    from openTSNE import TSNE  # imported here: the report only reads embeddings

    assert real_ND.shape[1] == fake_ND.shape[1], (real_ND.shape, fake_ND.shape)
    num = min(points_per_side, len(real_ND), len(fake_ND))
    if num < 2:
        raise ValueError(f"a t-SNE needs at least 2 real and 2 generated images (got {len(real_ND)}, {len(fake_ND)})")
    real_index, fake_index = evenly_spread_indices(len(real_ND), num), evenly_spread_indices(len(fake_ND), num)
    feats_ND = np.concatenate([real_ND[real_index], fake_ND[fake_index]]).astype(np.float64)
    points = principal_components(feats_ND, PCA_DIMS)
    perplexity = min(PERPLEXITY, (len(points) - 1) / 3)
    tsne = TSNE(perplexity=perplexity, random_state=seed, n_jobs=1, negative_gradient_method="bh", verbose=False)
    return {
        "source": np.array(["real"] * num + ["generated"] * num),
        "label": np.concatenate([real_labels_N[real_index], fake_labels_N[fake_index]]).astype(np.int64),
        "xy_N2": np.asarray(tsne.fit(points), dtype=np.float64),
    }


def write_embedding(path: Path, embedding: dict[str, np.ndarray], class_names: list[str]) -> None:
    """The embedding as CSV (atomically): one row per image, source, class index and name, x and y."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for source, label, (x, y) in zip(embedding["source"], embedding["label"], embedding["xy_N2"], strict=True):
        writer.writerow([source, int(label), class_names[label], f"{x:.6f}", f"{y:.6f}"])
    write_text_atomic(Path(path), buffer.getvalue())


def read_embedding(path: Path) -> dict[str, np.ndarray]:
    """tsne.csv as {"source", "label", "class", "xy_N2"} arrays."""
    with Path(path).open(newline="") as source:
        rows = list(csv.DictReader(source))
    return {
        "source": np.array([row["source"] for row in rows]),
        "label": np.array([int(row["label"]) for row in rows], dtype=np.int64),
        "class": np.array([row["class"] for row in rows]),
        "xy_N2": np.array([[float(row["x"]), float(row["y"])] for row in rows], dtype=np.float64).reshape(-1, 2),
    }


def embedding_figure(csv_path: Path, png_path: Path, *, title: str) -> None:
    """Draw tsne.csv to png_path (atomically): one colour per class, real images as dots, generated ones as crosses;
    a legend of the classes and one of the markers."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on cluster nodes
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from distgan.analysis.figures import save_figure

    embedding = read_embedding(csv_path)
    classes = dict(zip(embedding["label"].tolist(), embedding["class"].tolist(), strict=True))
    colours = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    markers = {"real": "o", "generated": "x"}
    fig, ax = plt.subplots(figsize=(7, 6), layout="constrained")
    for source in SOURCES:
        chosen = embedding["source"] == source
        ax.scatter(*embedding["xy_N2"][chosen].T, c=[colours(k % colours.N) for k in embedding["label"][chosen]],
                   marker=markers[source], s=10, linewidths=0.8, alpha=0.6)  # fmt: skip
    by_class = [Line2D([], [], linestyle="", marker="s", color=colours(k % colours.N), label=name)
                for k, name in sorted(classes.items())]  # fmt: skip
    by_source = [Line2D([], [], linestyle="", marker=markers[s], color="black", label=s) for s in SOURCES]
    ax.add_artist(ax.legend(handles=by_class, title="class", loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8))
    ax.legend(handles=by_source, loc="lower left", bbox_to_anchor=(1.01, 0), fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    save_figure(fig, Path(png_path))
