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


@pytest.fixture(scope="session")
def built_cscan(tmp_path_factory):
    """The C scanner and writer (caffemem/logparse/_cscan.c) as ``pip install`` builds it
    (setup.py's extension): the copy built in place next to the sources if there is one, else
    built now into a temporary folder.  None where it cannot be built (no C compiler)."""
    import importlib.util
    import subprocess
    import sys

    from caffemem.logparse import fastscan

    if fastscan.cscan is not None:
        return fastscan.cscan
    out = tmp_path_factory.mktemp("cscan")
    done = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--build-lib", str(out / "lib"),
                           "--build-temp", str(out / "tmp")], cwd=ROOT, capture_output=True, text=True)
    built = sorted((out / "lib" / "caffemem" / "logparse").glob("_cscan.*"))
    if done.returncode != 0 or not built:
        return None
    spec = importlib.util.spec_from_file_location("caffemem.logparse._cscan", built[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(params=["numpy", "c"])
def engine(request, built_cscan, monkeypatch) -> str:
    """Runs a test with each scanner and writer: numpy's, then the C extension's (skipped,
    saying so, where it cannot be built)."""
    from caffemem.logparse import fastscan

    if request.param == "c":
        if built_cscan is None:
            pytest.skip("the C extension (caffemem/logparse/_cscan.c) cannot be built here (no C compiler?): "
                        "the numpy scanner and writers are tested")
        monkeypatch.setattr(fastscan, "cscan", built_cscan)
    else:
        monkeypatch.setattr(fastscan, "cscan", None)
    return request.param
