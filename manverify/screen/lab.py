"""A screening set-up of realistic size for benchmarks: the built-in plan, a block list of 100 k
numbers and 10 k prefixes, an allow list, local counters, and calls between pools of numbers."""
from __future__ import annotations

import random
import tempfile
from pathlib import Path
from typing import List, Tuple

from .engine import Screen


def screening_lab(now: float, *, numbers: int = 100_000, prefixes: int = 10_000, callers: int = 20_000,
                  callees: int = 200_000, calls: int = 50_000, seed: int = 17) -> Tuple[Screen, List[Tuple[str, str]]]:
    """(screen, [(orig, dest), ...]): a Screen on lists of `numbers` numbers and `prefixes`
    prefixes, and calls from `callers` numbers to `callees` numbers (about 1 % of callers listed)."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="manverify-screen-lab-") as tmp:
        block = Path(tmp, "block.txt")
        lines = [f"0{rng.choice('1234567')}{rng.randrange(10**8):08d}" for _ in range(numbers)]
        lines += [f"0{rng.choice('1234589')}{rng.randrange(10**5):05d}*" for _ in range(prefixes)]
        block.write_text("\n".join(lines) + "\n")
        Path(tmp, "allow.txt").write_text("0140000000\n")
        screen = Screen.from_dict({"lists": {"block": ["block.txt"], "allow": ["allow.txt"]},
                                   "counters": {"backend": "local"}, "reload": False}, tmp)
    pool = [f"0{rng.choice('67')}{rng.randrange(10**8):08d}" for _ in range(callers - callers // 100)]
    pool += rng.sample(lines[:numbers], callers // 100)
    people = [f"0{rng.choice('1234567')}{rng.randrange(10**8):08d}" for _ in range(callees)]
    return screen, [(rng.choice(pool), rng.choice(people)) for _ in range(calls)]
