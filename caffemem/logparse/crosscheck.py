"""Does a log agree with a prototxt?  The log's nets against the nets caffemem builds."""

from __future__ import annotations

from .summary import LogSummary


def crosscheck(s: LogSummary, prototxt: str, args=None) -> str:
    """Compare the log's nets with the prototxt's (a net or a solver), layer by layer: names,
    top shapes and the running "Memory required for data"; names the first layer that
    differs and how.  ``args``: the command line's net options (--input, --batch, --phase,
    --stage, --level); without --input the log's own shapes size the data layers.  A net
    that cannot be built is said in one line, not raised."""
    from dataclasses import replace

    from ..analysis import AnalysisOptions, build_all
    from ..errors import UserError

    options = AnalysisOptions()
    if args is not None:
        from ..commands.common import analysis_options
        from ..diagnose import log_shapes

        options = analysis_options(args)
        if not options.inputs:
            options = replace(options, inputs_per_net=log_shapes(s, options.batch is not None))
    try:
        nets = build_all(prototxt, options)
    except UserError as e:
        return f"cross-check: {prototxt} could not be built ({str(e).splitlines()[0]})"
    lines = []
    for logged, built in zip(s.nets, nets):
        ours = [l for l in built.layers]
        for i, (a, b) in enumerate(zip(logged.layers, ours)):
            shapes = [built.blobs[t].shape for t in b.tops]
            if a.name != b.name:
                lines.append(f"{logged.label}: layer {i} is '{a.name}' in the log, '{b.name}' in {prototxt}")
                break
            logged_shapes = [tuple(x) for x in a.shapes]
            if not logged_shapes and a.data_size:  # only the data layer's "output data size" shows
                logged_shapes, shapes = [tuple(a.data_size)], shapes[:1]
            if logged_shapes and logged_shapes != shapes:
                lines.append(f"{logged.label}: layer '{a.name}' tops {logged_shapes} in the log, {shapes} in "
                             f"{prototxt} (different input shapes? --input/--batch)")
                break
            if a.memory_after is not None and a.memory_after != b.memory_after:
                lines.append(f"{logged.label}: after layer '{a.name}' the log says {a.memory_after:,} "
                             f"bytes, caffemem {b.memory_after:,}")
                break
        else:
            compared = min(len(logged.layers), len(ours))
            lines.append(f"{logged.label}: agrees with {prototxt} "
                         f"({compared} layer{'s' if compared != 1 else ''} compared)")
    return "\n".join(lines)
