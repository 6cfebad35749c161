"""Training-set mixtures: real only, synthetic only, or real + x % synthetic, as a new shard directory.

For real + x % synthetic, round(x·N) synthetic samples (N = number of real samples) are drawn without
replacement, per class in proportion to the real class histogram (largest-remainder rounding, so the
per-class quotas sum exactly to round(x·N)). Encoded image bytes are copied, never re-encoded, and the
output order is a seeded shuffle of the union (DALI's reader shuffles only within a buffer, so a
real-then-synthetic order would stay visible). The manifest's provenance records every component:
its directory, manifest sha256, how many samples of each class went in.
"""

from pathlib import Path

import numpy as np

from distgan.data.manifest import image_extension, manifest_digest, read_manifest
from distgan.data.selection import indexed_samples
from distgan.data.writer import ShardOptions, write_sample_stream
from distgan.errors import ConfigError, DataError


def class_quotas(class_counts: list[int], total: int) -> np.ndarray:
    """Split `total` over classes in proportion to class_counts; the quotas sum exactly to `total`."""
    counts = np.asarray(class_counts, np.float64)
    exact = counts / counts.sum() * total
    quotas = np.floor(exact).astype(np.int64)
    # Largest remainder first; ties go to the lower class index (stable argsort): deterministic.
    order = np.argsort(-(exact - quotas), kind="stable")
    quotas[order[: total - int(quotas.sum())]] += 1
    return quotas


def write_mixture(
    out_dir: Path,
    *,
    real_dir: Path | None,
    synthetic_dir: Path | None,
    synthetic_fraction: float | None = None,
    seed: int = 0,
    max_samples_per_shard: int = 2000,
) -> dict:
    """Write a mixture shard directory and return its manifest.

    real_dir only: the real set; synthetic_dir only: the synthetic set; both with synthetic_fraction
    x > 0: all real samples plus round(x·N) synthetic ones following the real class histogram.
    """
    parts = {"real": real_dir, "synthetic": synthetic_dir}
    if real_dir is None and synthetic_dir is None:
        raise ConfigError("a mixture needs --real and/or --synthetic shard directories")
    if real_dir is not None and synthetic_dir is not None and not (synthetic_fraction or 0) > 0:
        raise ConfigError(f"--synthetic-fraction must be > 0 when mixing real and synthetic (got {synthetic_fraction})")
    manifests = {name: read_manifest(d) for name, d in parts.items() if d is not None}
    first = next(iter(manifests.values()))
    for name, manifest in manifests.items():
        for field in ("class_names", "image_shape_HWC", "image_format"):
            if manifest.get(field, "png") != first.get(field, "png"):
                raise DataError(f"{parts[name]}: {field} {manifest.get(field)!r} differs from the other component's")
    rng = np.random.default_rng(seed)
    chosen, components = [], []
    for name, shard_dir in parts.items():
        if shard_dir is None:
            continue
        samples = indexed_samples(shard_dir)
        if name == "synthetic" and real_dir is not None:
            num_real = manifests["real"]["num_samples"]
            quotas = class_quotas(manifests["real"]["class_counts"], round(synthetic_fraction * num_real))
            labels = np.array([s[3] for s in samples])
            picked = []
            for label, quota in enumerate(quotas):
                pool = np.flatnonzero(labels == label)
                if quota > len(pool):
                    raise DataError(
                        f"{shard_dir}: class {label} has {len(pool)} synthetic samples, the mixture needs {quota}"
                    )
                picked += sorted(rng.choice(pool, quota, replace=False).tolist())
            samples = [samples[i] for i in picked]
        counts = np.bincount([s[3] for s in samples], minlength=len(first["class_names"])).tolist()
        components.append(
            {"role": name, "dir": str(shard_dir), "manifest_sha256": manifest_digest(shard_dir)}
            | {"num_samples": len(samples), "class_counts": counts}
        )
        chosen += [(name, s) for s in samples]
    order = rng.permutation(len(chosen))
    ext = image_extension(first)

    def stream():
        handles = {}
        try:
            for i in order:
                role, (path, key, entries, label) = chosen[i]
                handle = handles.setdefault(path, open(path, "rb"))  # noqa: SIM115 (closed below)
                offset, size = entries[ext]
                handle.seek(offset)
                yield f"{role}-{key}", handle.read(size), label
        finally:
            for handle in handles.values():
                handle.close()

    provenance = {"kind": "mixture", "synthetic_fraction": synthetic_fraction, "seed": seed, "components": components}
    options = ShardOptions(
        image_format=first.get("image_format", "png"),
        jpeg_quality=first.get("jpeg_quality") or 95,  # bytes are copied: record the components' quality
        max_samples_per_shard=max_samples_per_shard,
    )
    shape = first["image_shape_HWC"]
    return write_sample_stream(
        stream(),
        out_dir,
        options=options,
        class_names=tuple(first["class_names"]),
        image_shape_HWC=None if shape is None else tuple(shape),
        provenance=provenance,
    )
