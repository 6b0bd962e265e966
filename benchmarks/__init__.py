"""Benchmarks for rangewsgi: in-process cost, loopback throughput, scaling and memory."""

import sys
from pathlib import Path

# The loopback helpers live in tests/support.py; the package under test in the repository root.
_ROOT = Path(__file__).resolve().parent.parent
for _path in (str(_ROOT / "tests"), str(_ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)
