"""Peak memory of parsing hostile list files (issue 11.15), each in a fresh process.

    python -m bench.hostile_lists [--workdir DIR]

Files (made once in a temp dir): 200 MB of ``1`` without a newline, gzipped (about 200 KB), read
in every format; 1,000,000 invalid lines, gzipped (about 2 MB). For each: the outcome
(numbers kept, lines refused, or the error) and the child's peak RSS in MiB.
"""

from __future__ import annotations

import argparse
import gzip
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

CASES = [("one-line", fmt) for fmt in ("lines", "csv", "ftc", "tps")] + [("invalid", "lines"), ("invalid", "csv")]


def make_files(workdir: Path) -> dict[str, Path]:
    one_line = workdir / "one-line.gz"
    if not one_line.exists():
        with gzip.open(one_line, "wb") as out:
            block = b"1" * (1 << 20)
            for _ in range(200):
                out.write(block)
    invalid = workdir / "invalid.gz"
    if not invalid.exists():
        with gzip.open(invalid, "wt") as text:
            text.write("number\n")  # a CSV header: the csv case reads the same lines as rows
            text.writelines(f"not-a-number-{i}\n" for i in range(1_000_000))
    return {"one-line": one_line, "invalid": invalid}


def child(path: Path, fmt: str) -> None:
    from dncgate.lists.formats import ListFileError
    from dncgate.lists.sync import parse_file
    from dncgate.numbers import DialPlan

    try:
        parsed = parse_file(path, fmt, DialPlan(region="US"), delta=False)
        outcome = f"kept {len(parsed.adds):,}, refused {len(parsed.invalid):,}"
    except ListFileError as exc:
        outcome = f"ListFileError: {str(exc)[len(str(path)) + 2:][:90]}"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{peak:.0f}\t{outcome}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), args.child[1])
        return
    with tempfile.TemporaryDirectory() as tmp:
        files = make_files(args.workdir or Path(tmp))
        for name, fmt in CASES:
            path = files[name]
            result = subprocess.run([sys.executable, "-m", "bench.hostile_lists", "--child", str(path), fmt],
                                    capture_output=True, text=True, check=False, timeout=600)
            peak, _, outcome = result.stdout.strip().partition("\t")
            error = result.stderr.strip().splitlines()[-1] if result.returncode else ""
            print(f"{name:<9} {fmt:<6} {path.stat().st_size / 1024:>8.0f} KiB  peak {peak or '?':>5} MiB  "
                  f"{outcome or error}")


if __name__ == "__main__":
    main()
