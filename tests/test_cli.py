"""`distgan` stage errors; the stages chained as the README types them are in test_readme.py."""

import subprocess
import sys


def test_wrong_shard_directory_is_named(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "distgan.cli",
            "metrics",
            "--real",
            str(tmp_path),
            "--fake",
            str(tmp_path),
            "--extractor",
            "domain",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and f"{tmp_path}/manifest.json: no shard manifest" in done.stderr
