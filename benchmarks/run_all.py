"""`make bench`: every benchmark, one after the other (each prints its own numbers)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    ["bench_throughput.py", "--words", "1000000", "--backend", "fast"],
    ["bench_throughput.py", "--words", "1000000", "--backend", "fast", "--trained"],
    ["bench_throughput.py", "--words", "100000", "--backend", "semantic"],
    ["classifier_devset.py"],
    # the blind set no one writing rules has read: how the coding carries to new text
    ["classifier_devset.py", "--devset", str(HERE / "blind" / "blf")],
    ["bench_incremental.py"],
]

if __name__ == "__main__":
    failed = 0
    for name, *args in BENCHMARKS:
        if not (HERE / name).is_file():
            continue
        print(f"\n=== {name} {' '.join(args)}", flush=True)
        failed += subprocess.call([sys.executable, str(HERE / name), *args]) != 0
    sys.exit(1 if failed else 0)
