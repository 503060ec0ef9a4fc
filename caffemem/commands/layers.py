"""``caffemem layers``: the layer types caffemem has rules for."""

from __future__ import annotations

import argparse
import json

from .common import add_format_option, emit


def add_parser(sub) -> None:
    p = sub.add_parser("layers", help="list the layer types caffemem knows (BVLC and forks)",
                       description="List the layer types caffemem has shape rules for, with the fork they come from.")
    add_format_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..layers import known_types

    rows = sorted((name, rule.fork or "BVLC") for name, rule in known_types().items())
    if args.format == "json":
        emit(args, json.dumps([{"type": n, "fork": f} for n, f in rows], indent=1))
    elif args.format == "csv":
        emit(args, "type,fork\n" + "\n".join(f"{n},{f}" for n, f in rows))
    elif args.format == "markdown":
        emit(args, "| type | fork |\n|---|---|\n" + "\n".join(f"| {n} | {f} |" for n, f in rows))
    else:
        width = max(len(n) for n, _ in rows)
        emit(args, "\n".join(f"{n.ljust(width)}  {f}" for n, f in rows))
    return 0
