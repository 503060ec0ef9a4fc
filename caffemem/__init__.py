"""caffemem: where a Caffe net's memory goes.

Caffe prints ``Memory required for data: N`` while it builds a net; that figure only sums
forward top blobs.  caffemem rebuilds the net the way ``Net::Init`` does, reproduces that
figure to the byte, and models everything else Caffe really allocates.

The Python API (:mod:`caffemem.api`; nothing heavy is imported until a function is called)::

    import caffemem
    a = caffemem.analyze("train_val.prototxt", gpu_mem="11GiB")   # Analysis
    a.total_bytes, a.log_memory_required_for_data, a.fits, a.layers, a.to_dict()
    caffemem.diff("old.prototxt", "new.prototxt")                  # DiffResult
    caffemem.fit("train_val.prototxt", "11GiB")                    # FitResult
    caffemem.read_log("train.log")                                 # LogResult (numpy curves)
    caffemem.html_report("train_val.prototxt", log="train.log")    # the offline HTML page

``caffemem.diff`` and ``caffemem.fit`` are these functions; the internal modules of the same
names stay importable as ``from caffemem.diff import ...``.
"""

import sys as _sys
import types as _types

__version__ = "0.1.0"

_API = ("analyze", "diff", "fit", "read_log", "html_report")
_API_TYPES = ("Analysis", "NetResult", "LayerResult", "Top", "DiffResult", "FitResult", "LogResult")

__all__ = ["__version__", *_API, *_API_TYPES]


class _Function:
    """A package attribute that is always the API function, loaded on first use.  Importing
    the submodule ``caffemem.fit`` (or ``caffemem.diff``) would otherwise replace the
    attribute with that module; the submodule stays in ``sys.modules``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj, owner=None):
        from . import api

        return getattr(api, self.name)

    def __set__(self, obj, value) -> None:
        if not isinstance(value, _types.ModuleType):
            raise AttributeError(f"caffemem.{self.name} is the API function; it cannot be replaced")


class _Package(_types.ModuleType):
    analyze = _Function("analyze")
    diff = _Function("diff")
    fit = _Function("fit")
    read_log = _Function("read_log")
    html_report = _Function("html_report")

    def __getattr__(self, name: str):
        if name in _API_TYPES:
            from . import api

            return getattr(api, name)
        raise AttributeError(f"module 'caffemem' has no attribute {name!r}")

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(__all__))


_sys.modules[__name__].__class__ = _Package
