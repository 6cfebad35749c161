"""The main job: `python tune/sweep.py --space replacement [--quick | --recipe NAME] [--address ...] [--gan.lr-d ...]`.

A shim over the library's front door, `distgan.sweep` (`run(cfg)` from Python); `--help` lists every flag.
"""

import sys

from distgan.sweep import main

if __name__ == "__main__":
    sys.exit(main())
