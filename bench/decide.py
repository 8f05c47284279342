"""decide() latency: the pure policy function, no I/O. Target p99 <= 50 us.

    .venv/bin/python bench/decide.py [--iterations N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime

from dncgate.model import CallAttempt, Facts, ListHit, Originator, Purpose, TenantPolicy
from dncgate.numbers import DialPlan, normalise
from dncgate.policy import decide


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=200_000)
    args = parser.parse_args()
    tenant = TenantPolicy(name="acme", dial_plan=DialPlan(region="CN"))
    callee = normalise("13800138000", tenant.dial_plan)
    cases = {
        "listed (national_dnc)": Facts(national=ListHit("national", "7"), national_version="7"),
        "clear (allowed_clear)": Facts(national_version="7"),
    }
    for name, facts in cases.items():
        attempt = CallAttempt(tenant, Originator(account="a"), Purpose.MARKETING, callee, datetime.now(UTC))
        samples = []
        for _ in range(args.iterations):
            t0 = time.perf_counter_ns()
            decide(attempt, facts)
            samples.append(time.perf_counter_ns() - t0)
        samples.sort()
        n = len(samples)
        print(f"decide() {name:<24} p50={samples[n // 2] / 1000:.2f} us  p99={samples[int(n * 0.99)] / 1000:.2f} us"
              f"  p99.9={samples[int(n * 0.999)] / 1000:.2f} us  mean={statistics.fmean(samples) / 1000:.2f} us")
    # Normalisation (cached per (digits, plan)) is on the call path too: report both cold and warm.
    plan = DialPlan(region="CN")
    cold = []
    for i in range(20_000):
        digits = f"138{i:08d}"
        t0 = time.perf_counter_ns()
        normalise(digits, plan)
        cold.append(time.perf_counter_ns() - t0)
    cold.sort()
    p50, p99 = cold[len(cold) // 2] / 1000, cold[int(len(cold) * 0.99)] / 1000
    print(f"normalise() uncached  p50={p50:.2f} us  p99={p99:.2f} us")


if __name__ == "__main__":
    main()
