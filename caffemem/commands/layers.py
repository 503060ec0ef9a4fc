"""``caffemem layers``: the layer types caffemem has rules for."""

from __future__ import annotations

import argparse
import json

from .common import add_format_option, emit


def add_parser(sub) -> None:
    p = sub.add_parser("layers", help="list the layer types caffemem knows (BVLC and forks)",
                       description="List the layer types caffemem has shape rules for, with the fork they come from.",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n"
                              "  caffemem layers                     every type, with its fork\n"
                              "  caffemem layers Interp Upsample     is each known, and from which fork")
    p.add_argument("types", nargs="*", metavar="TYPE",
                   help="only these layer types (as in a prototxt's type: field); one without "
                        "a rule is an error that says so (default: every type)")
    add_format_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..layers import known_types

    rows = sorted((name, rule.fork or "BVLC") for name, rule in known_types().items())
    wanted = getattr(args, "types", None)
    if wanted:
        rows = _only(rows, wanted)
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


def _only(rows: list[tuple[str, str]], wanted: list[str]) -> list[tuple[str, str]]:
    """The rows of the types asked for (a case-only difference is forgiven); a type without a
    rule is a user error naming it, with the close names."""
    from ..errors import UserError, did_you_mean

    by_lower = {n.lower(): (n, f) for n, f in rows}
    unknown = [t for t in wanted if t.lower() not in by_lower]
    if unknown:
        t = unknown[0]
        raise UserError(f"layers: caffemem has no rule for layer type '{t}' (a net using it "
                        "gets it assumed shape-preserving, said by name; 'caffemem layers' lists "
                        "every known type)"
                        f"{did_you_mean(t, [n for n, _ in rows], cutoff=0.6)}")
    return list(dict.fromkeys(by_lower[t.lower()] for t in wanted))
