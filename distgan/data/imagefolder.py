"""ImageNet-scale path: an image-folder tree (`root/<split>/<class>/*.JPEG`) streamed into shards.

Unlike `sources.read_image_folder` (which loads a small tree into memory), this lists the files, then
decodes/resizes/encodes them in a process pool chunk by chunk, so memory stays bounded at any size.
With `image_format="jpeg"` and no resize, JPEG files are copied byte for byte (no second lossy pass).
The listing is in class order; with `options.shuffle_seed` set, the file list (paths only, never the images) is
permuted before streaming, so shards mix classes (keys stay the sorted listing's indices).
"""

from pathlib import Path

from PIL import Image

from distgan.data.manifest import order_record, shuffled_order
from distgan.data.sources import list_image_folder
from distgan.data.writer import ShardOptions, encode_file_chunk, encoded_chunks, write_sample_stream


def write_image_folder_shards(
    root: Path,
    split: str,
    out_dir: Path,
    *,
    options: ShardOptions,
    image_size: int | None,
    provenance: dict,
    progress=None,
) -> dict:
    """Shard `root/<split>` (optionally resized to image_size²) in parallel; returns the manifest."""
    files, labels, classes = list_image_folder(root, split)
    seed = options.shuffle_seed
    order = list(range(len(files))) if seed is None else shuffled_order(len(files), seed).tolist()
    files, labels = [files[i] for i in order], [labels[i] for i in order]
    with Image.open(files[0]) as first:
        mode = "L" if first.mode == "L" else "RGB"  # a grey tree stays grey; anything else becomes RGB
    step = options.chunk_size
    tasks = [
        (files[i : i + step], mode, image_size, options.image_format, options.jpeg_quality)
        for i in range(0, len(files), step)
    ]
    chunks = encoded_chunks(tasks, encode_file_chunk, options.num_workers)
    encoded = ((f"{order[i]:08d}", data, labels[i]) for i, data in enumerate(b for chunk in chunks for b in chunk))
    channels = 1 if mode == "L" else 3
    shape = None if image_size is None else (image_size, image_size, channels)  # None: sizes vary (ImageNet)
    return write_sample_stream(
        encoded,
        out_dir,
        options=options,
        class_names=classes,
        image_shape_HWC=shape,
        provenance=provenance | {"image_folder": str(root), "split": split, "resize": image_size},
        order=order_record(seed),
        progress=progress,
    )
