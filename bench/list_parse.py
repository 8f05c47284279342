"""How fast a one-number-a-line snapshot parses (``sync.parse_file``'s fast path), and its peak RSS.

    python -m bench.list_parse --lines 1000000 [--mix]

Writes a gzip snapshot of clustered CN mobiles (``--mix``: a third each CN, US and GB numbers) in
a temp dir, then parses it once as ``lists sync`` and ``lists load`` do. Prints lines, seconds,
microseconds a line, numbers kept and lines refused.
"""

from __future__ import annotations

import argparse
import gzip
import random
import resource
import tempfile
import time
from pathlib import Path

from bench.synthetic import clustered_numbers
from dncgate.lists.sync import parse_file
from dncgate.numbers import DialPlan

US_AREAS = (201, 212, 305, 312, 415, 512, 617, 702, 713, 818)
GB_RANGES = ("7400", "7700", "7900", "2079", "1612", "1134")


def snapshot_lines(count: int, mix: bool, seed: int = 2026) -> list[str]:
    if not mix:
        return [f"+{n}" for n in clustered_numbers(count, seed)]
    rng = random.Random(seed)
    third = count // 3
    lines = [f"+{n}" for n in clustered_numbers(count - 2 * third, seed)]
    lines += [f"+1{rng.choice(US_AREAS)}{rng.randrange(200, 1000)}{rng.randrange(10_000):04d}" for _ in range(third)]
    lines += [f"+44{rng.choice(GB_RANGES)}{rng.randrange(1_000_000):06d}" for _ in range(third)]
    rng.shuffle(lines)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--mix", action="store_true", help="CN, US and GB numbers in one file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "snapshot.txt.gz"
        with gzip.open(path, "wt", compresslevel=1) as out:
            out.write("\n".join(snapshot_lines(args.lines, args.mix)) + "\n")
        started = time.perf_counter()
        parsed = parse_file(path, "lines", DialPlan(region="CN"), delta=False)
        seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"lines {parsed.read:,}  seconds {seconds:.2f}  us/line {seconds / max(parsed.read, 1) * 1e6:.2f}  "
          f"kept {len(parsed.adds):,}  refused {len(parsed.invalid):,}  peak_rss_mib {peak:.0f}")


if __name__ == "__main__":
    main()
