"""The ``caffemem`` command line: argument parsing and dispatch, nothing else.

Each subcommand lives in :mod:`caffemem.commands` as a module with ``add_parser(sub)`` and
``run(args) -> int``.  Whatever goes wrong ends in exactly one line on stderr,
``caffemem: error: ...``, and an exit status (:data:`~caffemem.errors.EXIT_HELP`): usage
mistakes and errors in the user's input (:class:`~caffemem.errors.UserError`) exit 1, with
"did you mean" for a mistyped command, option or choice; anything else is a bug in caffemem
and exits 2 with one line asking for a report (``--debug`` or ``CAFFEMEM_DEBUG=1`` shows
the traceback).
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import sys
import textwrap
from importlib import import_module
from typing import NoReturn, Optional, Sequence

from . import __version__
from .errors import (EXIT_HELP, EXIT_HELP_NO_FIT, EXIT_INTERNAL, EXIT_USER, UserError, did_you_mean, one_line, shown,
                     take_notices)

COMMANDS = ("analyze", "diff", "log", "plot", "fit", "report", "layers")

DESCRIPTION = """\
Where does a Caffe net's memory go?

Caffe prints "Memory required for data: N" while it builds a net. That figure only sums
the forward top blobs. caffemem rebuilds the net exactly as Caffe does, reproduces that
figure to the byte, and models what Caffe really allocates: gradients, parameters and
solver history, im2col buffers, layer-internal buffers, cuDNN workspaces, prefetch
batches, test nets and per-GPU copies.
"""

EPILOG = """\
examples:
  caffemem analyze train_val.prototxt                  per-layer table and memory model
  caffemem analyze solver.prototxt --gpu-mem 8GiB      train + test nets: does it fit?
  caffemem analyze deploy.prototxt --caffe-log         Caffe's own setup lines, exactly
  caffemem analyze net.prototxt --input data=*,3,224,224   shape a database-backed data layer
  caffemem diff old.prototxt new.prototxt              where the extra gigabytes come from
  caffemem log train.log                               parse a log; diagnose an OOM crash
  caffemem fit net.prototxt --gpu-mem 11GB             largest batch that fits
  caffemem report net.prototxt -o report.html          the whole picture in one offline page

run 'caffemem COMMAND --help' for each command's options; --debug (anywhere) shows the
traceback of an internal error.

{SIZES}

{EXITS}
"""


class UsageError(UserError):
    """A command line argparse cannot read (unknown option, bad value, missing argument)."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line and exit 1 (:class:`UsageError`), with the
    close matches among the parser's options and choices."""

    def error(self, message: str) -> NoReturn:
        where = self.prog.split(" ", 1)[1] + ": " if " " in self.prog else ""
        raise UsageError(f"{where}{message}{self._hint(message)} (see '{self.prog} --help')")

    def _hint(self, message: str) -> str:
        m = re.match(r"unrecognized arguments: (.*)", message)
        if m:
            options = [o for o in self._option_string_actions if o.startswith("--")]
            for arg in m.group(1).split():
                if arg.startswith("-"):
                    hint = did_you_mean(arg.split("=")[0], options, cutoff=0.7)
                    if hint:
                        return hint
            return ""
        m = re.search(r"invalid choice: '(.*?)' \(choose from (.*)\)", message)
        if m:
            return did_you_mean(m.group(1), re.findall(r"'([^']*)'", m.group(2)), cutoff=0.6)
        return ""


def build_parser() -> argparse.ArgumentParser:
    from .units import SIZE_HELP

    parser = ArgumentParser(
        prog="caffemem", description=DESCRIPTION,
        epilog=EPILOG.replace("{SIZES}", textwrap.fill(SIZE_HELP, 88, initial_indent="sizes (--gpu-mem): "))
                     .replace("{EXITS}", textwrap.fill(EXIT_HELP, 88)),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"caffemem {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="on an internal error, show the traceback (also CAFFEMEM_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        import_module(f".commands.{name}", __package__).add_parser(sub)
    for p in sub.choices.values():
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="on an internal error, show the traceback (also CAFFEMEM_DEBUG=1)")
        if "exit status" not in (p.epilog or ""):  # analyze, diff, fit say it in their own words
            p.epilog = (p.epilog + "\n\n" if p.epilog else "") + textwrap.fill(EXIT_HELP_NO_FIT, 88)
            for a in p._actions:  # the shared --gpu-mem/--host-mem help promises status 3
                if a.help and a.help is not argparse.SUPPRESS:
                    a.help = re.sub(r"; exit status 3 when (it does|they do) not fit", "", a.help)
    return parser


def _fail(message: str) -> int:
    print(f"caffemem: error: {one_line(message)}", file=sys.stderr)
    return EXIT_USER


def main(argv: Optional[Sequence[str]] = None) -> int:
    # a net of 10^5 layers is millions of small objects (built nets, replays) that live until
    # the command returns, and they hold no reference cycles to speak of (a 100,000-layer
    # analyze or a 30,000-layer fit peaks at the same memory without the cyclic collector);
    # building the parser imports every command, many more objects that are never garbage.
    # The collector's passes over them were a fifth of those runs, so it is off while the
    # command runs (reference counting still frees everything), restored for a caller
    # in-process
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _main(argv)
    finally:
        if enabled:
            gc.enable()


def _main(argv: Optional[Sequence[str]]) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = bool(os.environ.get("CAFFEMEM_DEBUG")) or "--debug" in argv
    # numpy's OpenBLAS starts a pool of threads when numpy is imported; caffemem does no
    # linear algebra, so the command asks for none (a fifth of numpy's import time, more on
    # a busy machine).  The caller's own setting wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    take_notices()  # this run's warnings only (main may run several times in one process)
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        if extra:  # said by the command's own parser, which knows its options
            sub = parser._subparsers._group_actions[0].choices.get(getattr(args, "command", None))
            (sub or parser).error(f"unrecognized arguments: {' '.join(extra)}")
        if not getattr(args, "command", None):
            parser.print_help()
            return _fail("no command given: use one of " + ", ".join(COMMANDS))
        status = int(args.run(args) or 0)
        for message in take_notices():
            print(f"caffemem: warning: {one_line(message)}", file=sys.stderr)
        return status
    except UserError as e:
        typos = [n for n in take_notices() if "did you mean" in n]
        where = getattr(e, "where", None)  # file:line:col of a refused layer (analysis._locate)
        return _fail((f"{where}: " if where else "") + str(e) + (f" (note: {typos[0]})" if typos else ""))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except RecursionError as e:  # a net nested beyond what the parser follows: the user's input
        if debug:
            raise
        return _fail(f"input nested too deeply to read ({e}); is the file damaged?")
    except MemoryError:
        if debug:
            raise
        return _fail("out of memory while reading the input; is it a net or a log, and not "
                     "damaged (a size or count far too large)?")
    except Exception as e:  # a bug in caffemem, not the user's fault
        if debug:
            raise
        print(one_line(f"caffemem: internal error: {type(e).__name__}: {shown(str(e), 200)}; "
                       f"this is a bug in caffemem: please report it with the command and input "
                       f"(rerun with --debug for the traceback)"), file=sys.stderr)
        return EXIT_INTERNAL
