"""What a real Caffe run did, read from its folder: for the oracle tests over ../shared.

An oracle run folder (``oracle-random/NNNN/time``, ``oracle-gpu/lenet``...) holds Caffe's
complete log, its exit status and its measured figures.  This module turns the log into an
:class:`Outcome` (did Caffe build and run the net; if not, which layer refused it and why) and
gives every refusal a *normalized reason*, so that a Caffe check failure and caffemem's own
message can be compared by meaning (same layer, same rule) rather than by wording.

It reads the logs with its own small parser on purpose: the oracle's expected values must not
come from the caffemem code under test (``caffemem.logparse``).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

_GLOG = re.compile(r"^([IWEF])\d{4,8} [\d:.]+\s+\d+ ([\w.]+):(\d+)\] (.*)$")
_CREATING = re.compile(r"^Creating Layer (\S+)$")  # net.cpp:86, once per layer of every net
_BACKWARD_FRAME = re.compile(r"caffe::(\w+)Layer<[^>]*>::Backward_(?:cpu|gpu)\(")
#: lines that say the whole command ran to its end (``caffe time`` / ``caffe train``)
_FINISHED = ("*** Benchmark ends ***", "Optimization Done.")

#: normalized refusal reasons: (reason, pattern in Caffe's failing check, pattern in
#: caffemem's message).  A pattern's first group, when it has one, is a value both must
#: agree on (a negative dimension, an out-of-range axis, a param name).
REASONS: list[tuple[str, str, str]] = [
    ("negative top dimension", r"shape\[i\] >= 0 \((-\d+) vs\. 0\)", r"comes out as (-\d+)"),
    ("axis out of range", r"axis (-?\d+) out of range for \d+-D Blob",
     r"axis (-?\d+) out of range"),
    ("loss_weight count differs from the top count", r"num_loss_weights",
     r"loss_weight must be unspecified or\s+specified once per top"),
    ("in-place computation not allowed", r"does not allow in-place computation",
     r"does not allow in-place"),
    ("shared param shape mismatch", r"Cannot share param '([^']+)'.*shape mismatch",
     r"cannot share param '([^']+)'.*shape mismatch"),
    ("channels or num_output not divisible by group",
     r"channels_ % group_ == 0|num_output_ % group_ == 0", r"divisible by group"),
    ("LRN local_size must be odd", r"LRN only supports odd values for local_size",
     r"local_size.*odd|odd.*local_size"),
    ("tiles must be positive", r"Number of tiles must be positive", r"tiles must be positive"),
    ("legacy accessors on a blob with more than 4 axes",
     r"Cannot use legacy accessors on Blobs with > 4 axes", r"more than 4 axes|> ?4 axes"),
    ("layer has no Backward", r"Not Implemented Yet", r"no Backward|has no backward"),
]


def reason_of(text: str, side: str) -> Optional[tuple[str, Optional[str]]]:
    """(normalized reason, the value it carries or None) of a Caffe check (``side`` 'caffe')
    or of a caffemem message (``side`` 'caffemem'); None when no known reason matches."""
    for name, caffe_pat, ours_pat in REASONS:
        m = re.search(caffe_pat if side == "caffe" else ours_pat, text, re.I | re.S)
        if m:
            return name, (m.group(1) if m.groups() else None)
    return None


@dataclass(frozen=True)
class Outcome:
    """What Caffe did with a net in one command.

    ``kind``: ``ran`` (exit status 0), ``crashed_after_finishing`` (the command printed its
    end, then the process died, e.g. of heap corruption at exit), ``refused`` (a check failed
    while setting a layer up; ``layer`` is the layer being created), ``no_backward`` (a
    layer's Backward is not implemented; ``layer_type`` from the stack trace)."""

    kind: str
    layer: str = ""
    layer_type: str = ""
    check: str = ""  # the failing line, glog prefix stripped
    where: str = ""  # Caffe's source file:line of the failure

    @property
    def ran(self) -> bool:
        return self.kind in ("ran", "crashed_after_finishing")

    @property
    def reason(self) -> Optional[tuple[str, Optional[str]]]:
        return reason_of(self.check, "caffe") if self.check else None


def outcome(run: Path) -> Outcome:
    """The outcome of the Caffe run in folder ``run`` (``caffe.log`` and ``rc.txt``)."""
    rc = int((run / "rc.txt").read_text().split()[0])
    text = (run / "caffe.log").read_text(errors="replace")
    if rc == 0:
        return Outcome("ran")
    layer, fatal, where = "", None, ""
    for line in text.splitlines():
        m = _GLOG.match(line)
        if not m:
            continue
        body = m.group(4)
        c = _CREATING.match(body)
        if c:
            layer = c.group(1)
        if m.group(1) == "F":
            fatal, where = body, f"{m.group(2)}:{m.group(3)}"
            break
    if fatal is None:
        if any(mark in text for mark in _FINISHED):
            return Outcome("crashed_after_finishing")
        raise ValueError(f"{run}: exit status {rc} and no fatal log line; cannot tell why")
    if "Not Implemented Yet" in fatal:
        frame = _BACKWARD_FRAME.search(text)
        if frame:
            return Outcome("no_backward", layer_type=frame.group(1), check=fatal, where=where)
    return Outcome("refused", layer=layer, check=fatal, where=where)


def caffemem_args(folder: Path) -> dict[str, tuple]:
    """The ``--input`` shapes a folder's ``CAFFEMEM_ARGS.txt`` gives (database image sizes),
    parsed by the CLI's own ``--input`` parser."""
    from caffemem.commands.common import parse_input

    path = folder / "CAFFEMEM_ARGS.txt"
    if not path.is_file():
        return {}
    args = shlex.split(path.read_text())
    inputs = {}
    for i, arg in enumerate(args):
        if arg == "--input" and i + 1 < len(args):
            blob, shape = parse_input(args[i + 1])
            inputs[blob] = shape
    return inputs
