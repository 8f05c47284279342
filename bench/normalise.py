"""Normalisation cost per call: phonenumbers (``numbers.reference``) against the fast path
(``numbers.normalise_uncached``: numbers_fast, phonenumbers for what it does not take), both uncached,
on the same distinct numbers, in interleaved rounds so a busy machine slows both alike.

    .venv/bin/python -m bench.normalise [--numbers 3000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from dncgate.numbers import (
    Callee,
    DialPlan,
    normalise_uncached,
    reference,
    strip_technical_prefixes,
    warm_up,
)
from dncgate.numbers_fast import fast_subscriber


def _us(rng: random.Random) -> str:
    return f"{rng.randint(2, 9)}{rng.randint(0, 99):02d}{rng.randint(2, 9)}{rng.randint(0, 999999):06d}"


def _gb(rng: random.Random) -> str:
    return f"7{rng.randint(400000000, 999999999)}"


def _cn(rng: random.Random) -> str:
    return f"1{rng.choice('3589')}{rng.randint(0, 999999999):09d}"


# name -> (plan, a number generator)
FORMS: dict[str, tuple[DialPlan, Callable[[random.Random], str]]] = {
    "US national (10 digits)": (DialPlan(region="US"), _us),
    "US 1 + national": (DialPlan(region="US"), lambda r: "1" + _us(r)),
    "US 011 + GB mobile": (DialPlan(region="US"), lambda r: "01144" + _gb(r)),
    "US +E.164": (DialPlan(region="US"), lambda r: "+1" + _us(r)),
    "US 9 + 1 + national": (DialPlan(region="US", technical_prefixes=("9",)), lambda r: "91" + _us(r)),
    "GB 0 + mobile": (DialPlan(region="GB"), lambda r: "0" + _gb(r)),
    "CN mobile": (DialPlan(region="CN"), _cn),
    "CN +E.164": (DialPlan(region="CN"), lambda r: "+86" + _cn(r)),
    "US sip: URI (fallback)": (DialPlan(region="US"), lambda r: f"sip:+1{_us(r)}@127.0.0.1"),
}


def _time(fn: Callable[[str, DialPlan], Callee], numbers: list[str], plan: DialPlan) -> float:
    started = time.perf_counter_ns()
    for number in numbers:
        fn(number, plan)
    return (time.perf_counter_ns() - started) / len(numbers) / 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--numbers", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(14)
    warm_up({plan for plan, _ in FORMS.values()})
    print(f"{'form':<26} {'phonenumbers us':>16} {'fast path us':>13} {'speed-up':>9} {'fast/all':>11} {'same':>5}")
    for name, (plan, make) in FORMS.items():
        numbers = [make(rng) for _ in range(args.numbers)]
        same = all(normalise_uncached(n, plan) == reference(n, plan) for n in numbers)
        slow, fast = [], []
        for _ in range(args.rounds):  # interleaved: both see the same machine load
            slow.append(_time(reference, numbers, plan))
            fast.append(_time(normalise_uncached, numbers, plan))
        taken = sum(fast_subscriber(n, plan, strip_technical_prefixes(n, plan.technical_prefixes)) is not None
                    for n in numbers)
        s, f = statistics.median(slow), statistics.median(fast)
        answer = "yes" if same else "NO"
        print(f"{name:<26} {s:>16.1f} {f:>13.1f} {s / f:>8.1f}x {taken:>5}/{len(numbers):<5} {answer:>5}")


if __name__ == "__main__":
    main()
