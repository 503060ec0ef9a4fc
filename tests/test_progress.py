"""Progress on stderr while a long log is read: a terminal only, after a second, never with
--quiet."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from caffemem.progress import Progress

LOG = Path(__file__).with_name("data") / "logs" / "train_ok.log"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_shown_on_a_terminal_once_the_second_is_past_and_cleared_after():
    out = _Tty()
    p = Progress(str(LOG), stream=out, after=0.0)
    p(LOG.stat().st_size // 2)
    assert "reading train_ok.log:  50% of" in out.getvalue()
    p.done()
    assert out.getvalue().endswith("\r\033[K")


def test_silent_before_the_second_off_a_terminal_and_with_quiet():
    for stream, after, quiet in ((_Tty(), 60.0, False), (io.StringIO(), 0.0, False), (_Tty(), 0.0, True)):
        p = Progress(str(LOG), stream=stream, after=after, quiet=quiet)
        p(100)
        p.done()
        assert stream.getvalue() == ""


def test_cli_quiet_and_a_pipe_leave_stderr_empty():
    for extra in ([], ["--quiet"]):
        r = subprocess.run([sys.executable, "-m", "caffemem", "log", str(LOG), *extra], capture_output=True,
                           text=True, cwd=Path(__file__).resolve().parents[1])
        assert r.returncode == 0 and r.stderr == "" and "train net" in r.stdout
