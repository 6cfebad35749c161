"""DALI's tar index (`wds2idx`): per sample the offset and size of each member, written beside every shard so that
neither DALI nor the fallback loader scans a tar at start-up (see writer.py)."""

import tarfile
from pathlib import Path

from distgan.runtime.atomic import write_text_atomic

INDEX_VERSION = "v1.2"  # the version line of DALI's wds2idx


def tar_index_lines(tar_path: Path) -> list[str]:
    """The lines of DALI's wds2idx index of a tar: `v1.2 N`, then per sample `ext offset size name ...`."""
    samples: list[list[str]] = []
    last_base = None
    with tarfile.open(tar_path) as tar:
        for member in tar:
            if not member.isreg():
                continue
            slash = member.name.rfind("/") + 1
            dot = member.name.find(".", slash)
            base, ext = member.name[:dot], member.name[dot + 1 :]
            if not base or base.endswith("/"):
                continue
            entry = f"{ext} {member.offset_data} {member.size} {member.name}"
            if base != last_base:
                samples.append([entry])
                last_base = base
            else:
                samples[-1].append(entry)
    return [f"{INDEX_VERSION} {len(samples)}"] + [" ".join(sample) for sample in samples]


def write_index(tar_path: Path) -> Path:
    """Write `<shard>.idx` beside a tar (atomically) and return its path."""
    idx_path = Path(tar_path).with_suffix(".idx")
    write_text_atomic(idx_path, "\n".join(tar_index_lines(tar_path)) + "\n")
    return idx_path
