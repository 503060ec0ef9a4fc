"""``caffemem layers``: the layer types caffemem has rules for."""

from __future__ import annotations

import argparse
import json



def add_parser(sub) -> None:
    p = sub.add_parser("layers", help="list the layer types caffemem knows (BVLC and forks)",
                       description="List the layer types caffemem has shape rules for, with the fork they come from.")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..layers import known_types

    rows = sorted((name, rule.fork or "BVLC") for name, rule in known_types().items())
    if args.format == "json":
        print(json.dumps([{"type": n, "fork": f} for n, f in rows], indent=1))
    else:
        width = max(len(n) for n, _ in rows)
        for n, f in rows:
            print(f"{n.ljust(width)}  {f}")
    return 0
