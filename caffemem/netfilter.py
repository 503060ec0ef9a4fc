"""Which layers a net keeps for a given NetState: Caffe's ``Net::FilterNet``.

A layer with no include rules is kept unless one of its exclude rules is met; a layer with
include rules is kept only if one of them is met.  A rule is met when the state's phase,
level and stages all satisfy it (all of ``stage`` present, none of ``not_stage``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import NetError
from .pb import caffe_pb2

TRAIN, TEST = "TRAIN", "TEST"


@dataclass(frozen=True)
class NetState:
    """The state a net is built in: phase, level and stages (``caffe_pb2.NetState``)."""

    phase: str = TRAIN
    level: int = 0
    stages: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_proto(cls, msg: "caffe_pb2.NetState", default_phase: str | None = None) -> "NetState":
        phase = caffe_pb2.Phase.Name(msg.phase) if msg.HasField("phase") or default_phase is None else default_phase
        return cls(phase, msg.level, tuple(msg.stage))

    def merged_with_net(self, net: "caffe_pb2.NetParameter") -> "NetState":
        """Caffe copies the net's own ``state`` and then overrides phase/level/stages the way
        the solver or the command line says; we keep the caller's values (this object) and
        add the net's stages."""
        stages = tuple(dict.fromkeys(tuple(net.state.stage) + self.stages))
        return NetState(self.phase, self.level, stages)


def rule_met(state: NetState, rule: "caffe_pb2.NetStateRule") -> bool:
    """``Net::StateMeetsRule``."""
    if rule.HasField("phase") and caffe_pb2.Phase.Name(rule.phase) != state.phase:
        return False
    if rule.HasField("min_level") and state.level < rule.min_level:
        return False
    if rule.HasField("max_level") and state.level > rule.max_level:
        return False
    if any(s not in state.stages for s in rule.stage):
        return False
    if any(s in state.stages for s in rule.not_stage):
        return False
    return True


def filter_layers(layers, state: NetState) -> list:
    """The layers of ``layers`` (LayerParameter messages) kept in ``state``, in order."""
    kept = []
    for layer in layers:
        if len(layer.include) and len(layer.exclude):
            raise NetError(f"layer '{layer.name}': specify either include rules or exclude rules; not both")
        if len(layer.include):
            if any(rule_met(state, r) for r in layer.include):
                kept.append(layer)
        elif not any(rule_met(state, r) for r in layer.exclude):
            kept.append(layer)
    return kept
