"""Shared test fixtures: where the project's samples and the optional ../shared data live."""

from __future__ import annotations

import os
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


def _c_compiler_or_reason(workdir: Path) -> str:
    """"" when the C compiler setuptools would use (``$CC``, else the one Python was built
    with) compiles a file that includes Python.h; else why not, in a few words."""
    import shlex
    import shutil
    import subprocess
    import sysconfig

    import importlib.util

    if importlib.util.find_spec("setuptools") is None:
        return "setuptools is not installed (pip install '.[test]' installs it)"
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    if not cc or not shutil.which(cc[0]):
        return f"no C compiler ({' '.join(cc) or 'CC unset'} not found)"
    include = sysconfig.get_paths()["include"]
    if not (Path(include) / "Python.h").exists():
        return f"no Python headers ({include}/Python.h absent: install python3-dev)"
    probe = workdir / "probe.c"
    probe.write_text("#include <Python.h>\nint caffemem_probe(void) { return Py_IsInitialized(); }\n")
    done = subprocess.run([*cc, "-I", include, "-c", str(probe), "-o", str(workdir / "probe.o")],
                          capture_output=True, text=True)
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip()[:300] or f"exit status {done.returncode}"
        return f"the C compiler {' '.join(cc)} does not compile a file including Python.h ({said})"
    return ""


def build_cscan(out: Path):
    """caffemem/logparse/_cscan.c built from this checkout's source, as ``pip install``
    builds it (setup.py's extension, by setuptools), into ``out`` and imported from there.
    Nothing is built next to the sources: CI's checkout has no .so, and one built in place
    may be older than the source.  Skips the calling test, saying why, only where no C
    compiler (or no Python.h) is at hand; a compiler that fails on _cscan.c fails it."""
    import importlib.util
    import subprocess
    import sys

    out.mkdir(parents=True, exist_ok=True)
    reason = _c_compiler_or_reason(out)
    if reason:
        pytest.skip(f"the C extension (caffemem/logparse/_cscan.c) cannot be built here: {reason}; "
                    f"only the numpy scanner and writers are tested")
    done = subprocess.run([sys.executable, "setup.py", "build_ext", "--force", "--build-lib", str(out / "lib"),
                           "--build-temp", str(out / "tmp")], cwd=ROOT, capture_output=True, text=True)
    built = sorted((out / "lib" / "caffemem" / "logparse").glob("_cscan.*"))
    if done.returncode != 0 or not built:  # setup.py's extension is optional: look at what it said
        pytest.fail(f"a C compiler is at hand but _cscan.c did not build:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    spec = importlib.util.spec_from_file_location("caffemem.logparse._cscan", built[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def built_cscan(tmp_path_factory):
    """The C scanner and writer built for this test session (:func:`build_cscan`)."""
    return build_cscan(tmp_path_factory.mktemp("cscan"))


@pytest.fixture(params=["numpy", "c"])
def log_engine(request, monkeypatch) -> str:
    """Runs a test with each scanner and writer: numpy's, then the C extension's (built for
    the session; skipped, saying why, where no C compiler is at hand)."""
    from caffemem.logparse import fastscan

    if request.param == "c":
        monkeypatch.setattr(fastscan, "cscan", request.getfixturevalue("built_cscan"))
    else:
        monkeypatch.setattr(fastscan, "cscan", None)
    return request.param
