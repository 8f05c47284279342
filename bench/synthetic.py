"""Synthetic list numbers clustered in operator blocks, the way real registrations are.

Real registries are not uniform over the number space: numbers sit in the ranges operators have
assigned (CN mobile 13x/15x/18x blocks, US area codes and exchanges), dense in some 10^4 blocks
and absent from most. This draws a fixed set of operator prefixes and fills a share of their
10^4 blocks at a varying density, seeded so every run sees the same numbers.
"""

from __future__ import annotations

import random

CN_MOBILE = [f"86{p}" for p in (130, 131, 132, 133, 135, 136, 137, 138, 139, 150, 151, 152, 157, 158, 159,
                                 170, 176, 177, 180, 181, 182, 185, 186, 187, 188, 189, 199)]


def clustered_numbers(count: int, seed: int = 2026) -> list[int]:
    """``count`` distinct E.164 integers (13-digit CN mobiles), sorted, in clustered blocks."""
    rng = random.Random(seed)
    numbers: set[int] = set()
    while len(numbers) < count:
        prefix = rng.choice(CN_MOBILE)
        # An operator's 10^4 block: '86' + 3-digit prefix + 4 digits = the block; 4 digits inside.
        block = int(prefix + f"{rng.randrange(10_000):04d}") * 10_000
        density = rng.choice((0.02, 0.05, 0.1, 0.2, 0.4))
        take = max(1, int(10_000 * density))
        numbers.update(block + rng.randrange(10_000) for _ in range(take))
    return sorted(numbers)[:count] if len(numbers) > count else sorted(numbers)


def misses(count: int, seed: int = 7) -> list[int]:
    """Numbers in the same ranges, most of them not on the list: realistic lookups."""
    rng = random.Random(seed)
    return [int(rng.choice(CN_MOBILE) + f"{rng.randrange(10**8):08d}") for _ in range(count)]
