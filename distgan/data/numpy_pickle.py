"""Pickled numpy arrays (the CIFAR-10 python batches) read without running code: only numpy's own globals load."""

import io
import pickle
from pathlib import Path

from distgan.errors import DataError


class NumpyOnlyUnpickler(pickle.Unpickler):
    """CIFAR batches are pickles; allow only what numpy arrays need so a crafted file cannot run code."""

    # numpy 1.x pickles name numpy.core, numpy 2.x numpy._core; _frombuffer appears with pickle protocol 5.
    ALLOWED = frozenset(
        {
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("_codecs", "encode"),
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.numeric", "_frombuffer"),
            ("numpy._core.numeric", "_frombuffer"),
        }
    )

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        return super().find_class(module, name)


def read_cifar_pickle(file: Path) -> dict:
    """A CIFAR-10 python batch (a pickle of numpy arrays), refused with DataError if it holds anything else."""
    if not file.is_file():
        raise DataError(f"cifar10: {file} not found; expected the CIFAR-10 python batches (cifar-10-batches-py)")
    try:
        return NumpyOnlyUnpickler(io.BytesIO(file.read_bytes()), encoding="bytes").load()
    except Exception as e:  # a corrupt pickle can fail in many ways; all mean "bad file"
        raise DataError(f"cifar10: {file}: not a CIFAR-10 python batch ({e})") from e
