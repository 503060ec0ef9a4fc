"""Caffe training logs: a stream of typed events (:mod:`.stream`: :mod:`.reader`,
:mod:`.fastscan`, :mod:`.parser`, :mod:`.events`), a fold into a summary (:mod:`.summary`,
:mod:`.curves`), the failure's kind, phase and culprit (:mod:`.failure`), and renderers
(:mod:`.render`).  The diagnosis with numbers joins
these with the allocation model (:mod:`caffemem.diagnose`)."""

from .failure import FailureReport, classify
from .parser import Stop
from .stream import iter_events
from .summary import LogSummary, summarize

__all__ = ["iter_events", "Stop", "summarize", "LogSummary", "classify", "FailureReport"]
