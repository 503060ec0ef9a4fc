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


def states_keeping(layers, state: NetState) -> str:
    """The command-line options (``--phase``/``--stage``/``--level``) of a state that keeps
    the most of ``layers``, tried from the values their rules name; "" when none keeps any."""
    phases, stages, levels = {TRAIN, TEST}, set(), {state.level}
    for layer in layers:
        for r in list(layer.include) + list(layer.exclude):
            stages.update(r.stage)
            if r.HasField("min_level"):
                levels.add(r.min_level)
            if r.HasField("max_level"):
                levels.add(r.max_level)
    groups: dict[tuple, list] = {}  # layers with the same rules filter alike: try one of each
    for layer in layers:
        key = (tuple(r.SerializeToString() for r in layer.include),
               tuple(r.SerializeToString() for r in layer.exclude))
        groups.setdefault(key, [layer, 0])[1] += 1
    reps = [g[0] for g in groups.values()]
    weight = {id(g[0]): g[1] for g in groups.values()}
    best, best_n = "", 0
    for phase in sorted(phases, key=lambda p: p != state.phase):
        for stage in [None] + sorted(stages)[:20]:
            for level in sorted(levels)[:10]:
                st = NetState(phase, level, tuple(state.stages) + ((stage,) if stage else ()))
                try:
                    n = sum(weight[id(l)] for l in filter_layers(reps, st))
                except NetError:
                    return ""
                if n > best_n:
                    opts = []
                    if phase != state.phase:
                        opts.append(f"--phase {phase}")
                    if stage:
                        opts.append(f"--stage {stage}")
                    if level != state.level:
                        opts.append(f"--level {level}")
                    best, best_n = " ".join(opts), n
    return best
