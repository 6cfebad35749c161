"""Part 3 of benchmarks/gpu_check.py: DALI's mixed decoder against the CPU (PIL) loader."""

import time

import torch

from .common import CLASS_NAMES, Row, Setup, check, labels_for, per_sec, require, synchronize, synthetic_images


def part_dali(setup: Setup, row: Row) -> None:
    require("nvidia.dali", "PIL")
    from distgan.data.dali_pipeline import decoder_placement
    from distgan.data.loader import make_loader
    from distgan.data.sources import ImageSplit
    from distgan.data.writer import ShardOptions, write_array_shards

    _, decoder = decoder_placement()
    check(decoder == ("cpu" if setup.rehearse else "mixed"), f"DALI decodes with {decoder!r} on {setup.device}")
    if setup.rehearse:
        row.note("rehearsal: DALI's cpu decoder in place of mixed")
    size = setup.sizes
    images = synthetic_images(size.dali_images, size.dali_image_size, seed=3)
    split = ImageSplit(images, labels_for(len(images)), CLASS_NAMES)
    for image_format in ("png", "jpeg"):
        shard_dir = setup.work_dir / f"shards-{image_format}"
        options = ShardOptions(image_format=image_format, jpeg_quality=90, num_workers=setup.loader_workers)
        write_array_shards(split, shard_dir, options=options, provenance={})
        decoded, rates = {}, {}
        for backend in ("dali", "pil"):
            loader = make_loader(shard_dir, batch_size=size.batch, train=False, num_workers=setup.loader_workers,
                                 backend=backend)  # fmt: skip
            decoded[backend] = torch.cat([batch["images"].cpu() for batch in loader.epoch(0)])  # also the warm-up
            start, count = time.perf_counter(), 0
            for batch in loader.epoch(1):
                count += len(batch["labels"])
            synchronize(setup.device)
            rates[backend] = per_sec(count, time.perf_counter() - start)
            check(count == len(images), f"{backend} read {count} of {len(images)} images")
        check(decoded["dali"].shape == decoded["pil"].shape, f"shapes {decoded['dali'].shape} {decoded['pil'].shape}")
        levels = ((decoded["dali"] - decoded["pil"]) * 127.5).abs()  # [-1, 1] back to pixel levels
        worst, mean = levels.max().item(), levels.mean().item()
        if image_format == "png":  # lossless: the same pixels (up to the normalisation's float rounding)
            check(worst < 1e-3, f"PNG pixels differ by up to {worst:.3g} levels")
        else:  # nvJPEG / the hardware decoder and libjpeg-turbo may round differently; a wrong decode is far off
            check(mean <= 2.0, f"JPEG pixels differ by {mean:.2f} levels on average (max {worst:.0f})")
        row.figure(f"{image_format}: DALI {decoder} {rates['dali']}, PIL {rates['pil']}, max Δ {worst:.3g} levels")
    row.note(f"{size.dali_images} images {size.dali_image_size}×{size.dali_image_size}, batch {size.batch}, "
             f"{setup.loader_workers} threads / workers each")  # fmt: skip
