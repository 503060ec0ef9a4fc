"""Shared test fixtures: where the project's samples and the optional ../shared data live."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
SHARED = ROOT.parent / "shared"


def shared_or_skip(*parts: str) -> Path:
    """A path under ../shared, or skip the test with a message saying what is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: ../shared (real Caffe logs and oracle data) is not "
                    f"next to this checkout; CI always has it")
    return path


LOG_DAMAGE = b"0123456789.:e-+ #()[]{}\"\n\r\x00Iteration, lr=loss Train Test net output layer name type"


def damaged_logs(seed: int, count: int) -> Iterator[bytes]:
    """Seeded random damage to our own fixture logs (tests/data/logs): bytes changed,
    dropped or doubled, NULs and line ends put in, the file cut anywhere in its second half."""
    rng = random.Random(seed)
    sources = [p.read_bytes() for p in sorted((Path(__file__).with_name("data") / "logs").glob("*.log"))]
    for _ in range(count):
        data = bytearray(rng.choice(sources))
        for _ in range(rng.randint(1, 12)):
            i = rng.randrange(len(data))
            op = rng.random()
            if op < 0.5:
                data[i] = rng.choice(LOG_DAMAGE)
            elif op < 0.75:
                del data[i:i + rng.randint(1, 5)]
            else:
                data[i:i] = data[i:i + rng.randint(1, 30)]
        yield bytes(data[:rng.randint(len(data) // 2, len(data))])
