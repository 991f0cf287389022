"""Schemathesis fuzzing of the whole API at scale: runs tests/service/test_schemathesis.py with
more examples per operation (default 24 → > 1,000 requests) and prints its summary line.

    python benchmarks/fuzz_api.py [--examples 24]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=24, help="examples per operation/role")
    args = parser.parse_args()
    env = {**os.environ, "DUIJIE_FUZZ_EXAMPLES": str(args.examples)}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/service/test_schemathesis.py",
            "-q",
            "-s",
            "-p",
            "no:cacheprovider",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - t0
    summary = re.findall(r"^schemathesis: .*$", proc.stdout, flags=re.M)
    if proc.returncode != 0 or not summary:
        print(proc.stdout[-4000:], proc.stderr[-2000:])
        print(f"fuzz_api: FAILED (exit {proc.returncode}) in {elapsed:.0f}s")
        return 1
    print(f"fuzz_api: {summary[-1].removeprefix('schemathesis: ')} in {elapsed:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
