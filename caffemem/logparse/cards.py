"""The GPU a log names, and its memory: a table of common cards.

Caffe names the card in ``caffe train`` ("GPU 0: GeForce GTX 1080", tools/caffe.cpp:209),
``caffe test``/``caffe time`` ("GPU device name: ...", caffe.cpp:270) and ``caffe
device_query``; NVCaffe prints the total itself ("Total memory: N").  A name gives the
card's memory as its maker sells it (GB = GiB).  Where a model came in several sizes, the
table holds the smallest and says so: ``--gpu-mem`` is the way to be exact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

GiB = 2**30

#: (pattern on the card's name, GiB, several sizes exist?, CPU and GPU share one memory?)
#: checked in order: more specific names first.
_CARDS: list[tuple[str, float, bool, bool]] = [
    # Jetson boards: the GPU uses the system's memory
    (r"tegra ?x1|gm20b|jetson ?tx1", 4, False, True),
    (r"tegra ?x2|gp10b|jetson ?tx2", 8, False, True),
    (r"tegra ?k1|gk20a|jetson ?tk1", 2, False, True),
    (r"xavier|gv11b", 16, True, True),
    (r"nano", 4, True, True),
    # data-centre cards
    (r"a100", 40, True, False), (r"h100", 80, False, False),
    (r"v100", 16, True, False), (r"p100", 16, True, False), (r"p40\b", 24, False, False),
    (r"\bp4\b", 8, False, False), (r"\bt4\b", 16, False, False), (r"m40", 12, True, False),
    (r"k80", 12, False, False), (r"k40", 12, False, False), (r"k20x", 6, False, False),
    (r"k20", 5, False, False), (r"grid k520", 4, False, False), (r"k10\b", 4, False, False),
    (r"m60", 8, False, False), (r"a10\b", 24, False, False), (r"a40\b", 48, False, False),
    # Titans
    (r"titan rtx", 24, False, False), (r"titan v\b", 12, False, False),
    (r"titan xp", 12, False, False), (r"titan x", 12, False, False),
    (r"titan z", 6, False, False), (r"titan black", 6, False, False), (r"titan\b", 6, False, False),
    # GeForce RTX / GTX, mobile variants first
    (r"3090", 24, False, False), (r"3080 ?ti", 12, False, False), (r"3080", 10, True, False),
    (r"3070", 8, False, False), (r"3060", 12, True, False),
    (r"2080 ?ti", 11, False, False), (r"2080", 8, False, False), (r"2070", 8, False, False),
    (r"2060", 6, True, False), (r"1660", 6, False, False), (r"1650", 4, False, False),
    (r"1080 ?ti", 11, False, False), (r"1080", 8, False, False), (r"1070", 8, False, False),
    (r"1060", 3, True, False), (r"1050 ?ti", 4, False, False), (r"1050", 2, False, False),
    (r"980m", 4, True, False), (r"970m", 3, True, False), (r"965m", 2, True, False),
    (r"960m", 2, True, False), (r"980 ?ti", 6, False, False), (r"980", 4, False, False),
    (r"970", 4, False, False), (r"960", 2, True, False), (r"950", 2, False, False),
    (r"780 ?ti", 3, False, False), (r"780", 3, True, False), (r"770", 2, True, False),
    (r"760", 2, False, False), (r"750 ?ti", 2, False, False), (r"750", 1, True, False),
    (r"gt 7[13]0", 1, True, False), (r"680", 2, False, False), (r"tx 580|gtx 580", 1.5, False, False),
    # Quadro
    (r"k2100m", 2, False, False), (r"k1100m", 2, False, False), (r"k4000", 3, False, False),
    (r"k5000", 4, False, False), (r"k6000", 12, False, False), (r"m4000", 8, False, False),
    (r"m6000", 12, True, False), (r"p5000", 16, False, False), (r"p6000", 24, False, False),
    (r"gv100", 32, False, False), (r"rtx 8000", 48, False, False), (r"rtx 6000", 24, False, False),
]
_SIZE_IN_NAME = re.compile(r"(\d+)\s*GB", re.I)  # "Tesla P100-SXM2-16GB", "GTX 1060 3GB"


@dataclass
class Card:
    name: str
    total_bytes: Optional[int]
    #: how the size is known: "the log", "its name", "the table (smallest of several sizes)"
    source: str
    shared_memory: bool = False  # a Jetson board: host and GPU allocations share one memory

    def describe(self) -> str:
        from ..units import human

        size = f", {human(self.total_bytes)} ({self.source})" if self.total_bytes else ""
        shared = "; CPU and GPU share one memory" if self.shared_memory else ""
        return f"{self.name or 'a card the log does not name'}{size}{shared}"


def card_size(name: str) -> tuple[Optional[int], str, bool]:
    """(bytes, how it is known, shared memory?) of a card by its name."""
    low = name.lower()
    m = _SIZE_IN_NAME.search(name)
    shared = False
    for pattern, gib, several, share in _CARDS:
        if re.search(pattern, low):
            shared = share
            if not m:
                return (int(gib * GiB), "the table of common cards" + (
                    ", the smallest of its sizes: give --gpu-mem if yours has more" if several else ""),
                        shared)
            break
    if m:
        return int(m.group(1)) * GiB, "its name", shared
    return None, "", shared


_NAME_LINES = (re.compile(r"^GPU device name: (.+)$"), re.compile(r"^GPU \d+: (.+)$"),
               re.compile(r"^(?:CUDA )?[Dd]evice \d+: (.+)$"), re.compile(r"^Name: (.+)$"))


def card_from_log(gpu_lines: list[str], total_bytes: Optional[int] = None) -> Optional[Card]:
    """The card the log's GPU lines name (the first), with its memory: the log's own
    "Total memory" figure when it prints one, else from the name."""
    for line in gpu_lines:
        for pat in _NAME_LINES:
            m = pat.match(line.strip())
            if m:
                name = m.group(1).strip()
                size, source, shared = card_size(name)
                if total_bytes:
                    return Card(name, total_bytes, "the log", shared)
                return Card(name, size, source, shared)
    if total_bytes:
        return Card("", total_bytes, "the log")  # the size only (NVCaffe's failure line)
    return None


def gpu_count(gpu_lines: list[str]) -> int:
    """How many GPUs the run uses: "Using GPUs 0, 1" (caffe.cpp:204), else the number of
    "GPU n: name" lines; 1 when the log does not say."""
    for line in gpu_lines:
        m = re.match(r"^Using GPUs (.+)$", line.strip())
        if m:
            return max(1, len([x for x in re.split(r"[,\s]+", m.group(1)) if x.isdigit()]))
    named = {line.split(":")[0] for line in gpu_lines if re.match(r"^GPU \d+: ", line.strip())}
    return max(1, len(named))
