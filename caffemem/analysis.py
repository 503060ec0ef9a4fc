"""The library's front door: file in, built nets out (and, from there, the memory model).

:func:`build_all` loads a net or solver prototxt and builds every net Caffe would build from
it, in Caffe's order, with the user's shape overrides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .loader import Loaded, load
from .net import BuildOptions, Net, build_net, check_inputs_used

Shape = tuple


@dataclass
class AnalysisOptions:
    """What the user says about how to build the nets (CLI flags map onto these)."""

    phase: Optional[str] = None  # for a net file: TRAIN (default) or TEST
    stages: tuple[str, ...] = ()
    level: Optional[int] = None
    inputs: dict[str, Shape] = field(default_factory=dict)  # --input, all nets
    #: overrides for one net only, keyed by its label ("net", "train net", "test net #0")
    inputs_per_net: dict[str, dict[str, Shape]] = field(default_factory=dict)
    batch: Optional[int] = None  # --batch: every data layer
    test_batch: Optional[int] = None  # --test-batch: data layers of test nets only
    #: ``batch`` applies to the train net (or the one net) only; test nets keep their own
    batch_train_only: bool = False


def build_loaded(loaded: Loaded, options: AnalysisOptions) -> list[Net]:
    """Build every net of an already loaded file."""
    nets = []
    for spec in loaded.nets:
        inputs = dict(options.inputs)
        inputs.update(options.inputs_per_net.get(spec.label, {}))
        batch = options.batch
        if spec.label.startswith("test") and (options.test_batch is not None or options.batch_train_only):
            batch = options.test_batch
        bo = BuildOptions(inputs=inputs, batch=batch, net_dir=spec.net_dir, strict_inputs=False)
        net = build_net(spec.param, spec.state, bo, source=spec.source)
        net.label = spec.label
        net.warnings[:0] = spec.notes
        nets.append(net)
    check_inputs_used(options.inputs, nets)
    return nets


def analyze_file(path: str, options: Optional[AnalysisOptions] = None) -> tuple[Loaded, list[Net]]:
    """Load ``path`` (net or solver prototxt) and build its nets; also return what was loaded
    (the solver, when there is one, decides the memory model's solver and schedule)."""
    options = options or AnalysisOptions()
    loaded = load(path, phase=options.phase, stages=options.stages, level=options.level)
    return loaded, build_loaded(loaded, options)


def build_all(path: str, options: Optional[AnalysisOptions] = None) -> list[Net]:
    """Load ``path`` (net or solver prototxt) and build its nets."""
    return analyze_file(path, options)[1]
