"""Which implementation each layer runs under, as Caffe's ``layer_factory.cpp`` decides.

The factory is compile-time: a cuDNN build (``engine='cudnn'``) turns a layer's ``DEFAULT``
engine into ``CUDNN`` where cuDNN has the layer, a build without cuDNN (``engine='caffe'``)
into ``CAFFE``.  A layer's own ``engine:`` field wins, with Caffe's exceptions:

- Convolution/Deconvolution: a dilation > 1 forces CAFFE (an explicit CUDNN is fatal in
  Caffe; we report CAFFE and say so);
- Pooling: MAX pooling and pooling with two tops (the mask) always use Caffe's own layer;
- LRN: WITHIN_CHANNEL runs as CuDNNLCN, ACROSS_CHANNELS as CuDNNLRN unless ``local_size``
  exceeds ``CUDNN_LRN_MAX_N`` (16);
- ReLU, Sigmoid, TanH, Softmax: cuDNN when available.

Layers a Caffe layer builds for itself bypass the factory except SoftmaxWithLoss's softmax
(created through the registry, so cuDNN in a cuDNN build); Swish's and
SigmoidCrossEntropyLoss's sigmoids and LRN/SPP's poolings are always Caffe's.
In cpu mode nothing runs on cuDNN.
"""

from __future__ import annotations

from .buffers import MemoryEnv

CAFFE, CUDNN = "CAFFE", "CUDNN"
CUDNN_LRN_MAX_N = 16

#: the ``*_param`` field holding each type's ``engine``
_ENGINE_FIELD = {
    "Convolution": "convolution_param", "Deconvolution": "convolution_param",
    "Pooling": "pooling_param", "LRN": "lrn_param", "ReLU": "relu_param",
    "Sigmoid": "sigmoid_param", "TanH": "tanh_param", "Softmax": "softmax_param",
}
# Engine enums share values in caffe.proto: DEFAULT = 0, CAFFE = 1, CUDNN = 2.
_DEFAULT, _CAFFE, _CUDNN = 0, 1, 2


def has_engine_choice(type_: str) -> bool:
    return type_ in _ENGINE_FIELD


def _requested(param, type_: str) -> int:
    field = _ENGINE_FIELD[type_]
    sub = getattr(param, field)
    return int(sub.engine)


def layer_engine(type_: str, param, env: MemoryEnv, notes: list | None = None) -> str:
    """``CAFFE`` or ``CUDNN`` for a layer of ``type_`` with LayerParameter ``param``.

    ``notes`` (optional) receives a sentence when Caffe overrides the requested engine.
    """
    if type_ == "SoftmaxWithLoss":  # its inner softmax goes through the factory
        type_ = "Softmax"
    if type_ not in _ENGINE_FIELD or not env.gpu:
        return CAFFE
    req = _requested(param, type_)
    if req == _CAFFE:
        return CAFFE
    if req == _DEFAULT and env.engine != "cudnn":
        return CAFFE
    # CUDNN requested (explicitly, or DEFAULT in a cuDNN build)
    if type_ in ("Convolution", "Deconvolution"):
        if any(d > 1 for d in param.convolution_param.dilation):
            if req == _CUDNN and notes is not None:
                notes.append("engine CUDNN with dilation > 1: Caffe stops with \"CuDNN doesn't "
                             "support the dilated convolution\"; modeled as CAFFE")
            return CAFFE
        return CUDNN
    if type_ == "Pooling":
        if len(param.top) > 1 or param.pooling_param.pool == 0:  # MAX
            return CAFFE
        return CUDNN
    if type_ == "LRN":
        lp = param.lrn_param
        if lp.norm_region == 1:  # WITHIN_CHANNEL -> CuDNNLCN
            return CUDNN
        return CAFFE if lp.local_size > CUDNN_LRN_MAX_N else CUDNN
    return CUDNN


def engine_of(ctx, env: MemoryEnv) -> str:
    """:func:`layer_engine` for a :class:`~caffemem.layers.base.LayerCtx`."""
    return layer_engine(ctx.type, ctx.param, env)


def describe(type_: str, param, env: MemoryEnv) -> str:
    """The C++ class Caffe instantiates, e.g. ``CuDNNConvolutionLayer``, for reports."""
    eng = layer_engine(type_, param, env)
    if eng == CAFFE:
        return f"{type_}Layer"
    if type_ == "LRN" and param.lrn_param.norm_region == 1:
        return "CuDNNLCNLayer"
    return f"CuDNN{type_}Layer"
