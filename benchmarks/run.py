"""Run the benchmark: ``python benchmarks/run.py [options]`` is ``conveyor bench [options]``."""

from __future__ import annotations

import sys

from conveyor.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
