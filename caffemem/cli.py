"""The ``caffemem`` command line: argument parsing and dispatch, nothing else.

Each subcommand lives in :mod:`caffemem.commands` as a module with ``add_parser(sub)`` and
``run(args) -> int``.  Errors in the user's input (:class:`~caffemem.errors.UserError`) print
one line and exit 1; anything else is a bug in caffemem and exits 2 (set CAFFEMEM_DEBUG=1
for the traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import import_module
from typing import Optional, Sequence

from . import __version__
from .errors import EXIT_INTERNAL, EXIT_USER, UserError

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

run 'caffemem COMMAND --help' for each command's options.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="caffemem", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"caffemem {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        import_module(f".commands.{name}", __package__).add_parser(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USER
    try:
        return int(args.run(args) or 0)
    except UserError as e:
        print(f"caffemem: {e}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # a bug in caffemem, not the user's fault
        if os.environ.get("CAFFEMEM_DEBUG"):
            raise
        print(f"caffemem: internal error: {type(e).__name__}: {e}\n"
              f"  this is a bug in caffemem; rerun with CAFFEMEM_DEBUG=1 for the traceback "
              f"and please report it", file=sys.stderr)
        return EXIT_INTERNAL
