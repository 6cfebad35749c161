"""What the benchmark scripts share: the checkout and the shared data beside it, a timer, and the parser every script
starts from (its docstring as description, `--quick` for the smoke run CI can afford).

A script run as `python benchmarks/NAME.py` has benchmarks/ first on sys.path, so `from common import ...` finds
this file; importing it puts the checkout on sys.path too, so that distgan imports from this checkout even where
another copy is installed."""

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"  # ../shared/data: real data for tests and benchmarks
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def timed(function: Callable, *args, **kwargs) -> tuple[object, float]:
    """(value, wall seconds) of one call."""
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - start


def benchmark_parser(doc: str, quick: str) -> argparse.ArgumentParser:
    """A script's parser: its docstring (the claim, its reference and how to run it) as description and `--quick`,
    whose help says what the smoke run leaves out."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=quick)
    return parser
