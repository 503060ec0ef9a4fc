"""Bring old net definitions up to the current format, the way Caffe's upgrade_proto does.

Caffe upgrades a net as it reads it (``UpgradeNetAsNeeded``), in this order:

1. V1 data layers' transformation fields (scale, mean_file, crop_size, mirror inside
   ``data_param``/``image_data_param``/``window_data_param``) move to ``transform_param``;
2. V1 ``layers { type: CONVOLUTION }`` become ``layer { type: "Convolution" }``: the enum type
   becomes its string name, ``blobs_lr``/``weight_decay``/``param`` names become ``ParamSpec``s,
   every ``*_param`` message is carried over;
3. top-level ``input`` + ``input_dim``/``input_shape`` become one ``Input`` layer named
   ``input``, placed first;
4. BatchNorm layers that declare three ``param``s get lr_mult and decay_mult 0.

The deprecated V0 format (``layers { layer { type: "conv" } }``) predates 2014; it is reported
as unsupported with the Caffe tool that converts it.
"""

from __future__ import annotations

from .errors import UserError
from .pb import caffe_pb2

# V1 enum names -> current type strings (V1LayerParameter.LayerType).
V1_TYPE_NAMES = {
    "NONE": "", "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax", "BNLL": "BNLL",
    "CONCAT": "Concat", "CONTRASTIVE_LOSS": "ContrastiveLoss", "CONVOLUTION": "Convolution",
    "DECONVOLUTION": "Deconvolution", "DATA": "Data", "DROPOUT": "Dropout",
    "DUMMY_DATA": "DummyData", "EUCLIDEAN_LOSS": "EuclideanLoss", "ELTWISE": "Eltwise",
    "EXP": "Exp", "FLATTEN": "Flatten", "HDF5_DATA": "HDF5Data", "HDF5_OUTPUT": "HDF5Output",
    "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col", "IMAGE_DATA": "ImageData",
    "INFOGAIN_LOSS": "InfogainLoss", "INNER_PRODUCT": "InnerProduct", "LRN": "LRN",
    "MEMORY_DATA": "MemoryData", "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss",
    "MVN": "MVN", "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU", "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss", "SILENCE": "Silence",
    "SOFTMAX": "Softmax", "SOFTMAX_LOSS": "SoftmaxWithLoss", "SPLIT": "Split", "SLICE": "Slice",
    "TANH": "TanH", "WINDOW_DATA": "WindowData", "THRESHOLD": "Threshold",
}

# V1 fields handled explicitly rather than copied by name.
_V1_SPECIAL = {"layer", "type", "param", "blob_share_mode", "blobs_lr", "weight_decay",
               "bottom", "top", "name", "include", "exclude", "blobs", "loss_weight"}
_TRANSFORM_FIELDS = ("scale", "mean_file", "crop_size", "mirror")
_V1_DATA_PARAMS = {"DATA": "data_param", "IMAGE_DATA": "image_data_param",
                   "WINDOW_DATA": "window_data_param"}


def upgrade_net(net: "caffe_pb2.NetParameter", source: str = "<net>") -> list[str]:
    """Upgrade ``net`` in place; returns notes on what was upgraded (for the report)."""
    notes: list[str] = []
    if any(l.HasField("layer") for l in net.layers):
        raise UserError(
            f"{source}: uses the V0 layer format (layers {{ layer {{ ... }} }}) from before 2014; "
            f"convert it with Caffe's tools/upgrade_net_proto_text and analyze the result")
    if len(net.layers):
        if len(net.layer):
            raise UserError(
                f"{source}: mixes 'layer' and 'layers' definitions; Caffe refuses such a file "
                f"(write every layer in the current 'layer {{ type: \"...\" }}' format)")
        _upgrade_v1(net)
        notes.append("upgraded from the V1 'layers' format")
    if len(net.input):
        _upgrade_input(net, source)
        notes.append("top-level input fields became an Input layer named 'input'")
    for layer in net.layer:
        if layer.type == "BatchNorm" and len(layer.param) == 3:
            for p in layer.param:
                p.lr_mult = 0.0
                p.decay_mult = 0.0
    return notes


def _upgrade_v1(net: "caffe_pb2.NetParameter") -> None:
    type_enum = caffe_pb2.V1LayerParameter.LayerType
    new_fields = caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name
    upgraded = []
    for v1 in net.layers:
        type_name = type_enum.Name(v1.type) if v1.HasField("type") else "NONE"
        # 1. transformation fields move out of the data params
        if type_name in _V1_DATA_PARAMS and v1.HasField(_V1_DATA_PARAMS[type_name]):
            dp = getattr(v1, _V1_DATA_PARAMS[type_name])
            for f in _TRANSFORM_FIELDS:
                if dp.HasField(f):
                    setattr(v1.transform_param, f, getattr(dp, f))
                    dp.ClearField(f)
        # 2. the layer itself
        layer = caffe_pb2.LayerParameter()
        layer.bottom.extend(v1.bottom)
        layer.top.extend(v1.top)
        if v1.HasField("name"):
            layer.name = v1.name
        for r in v1.include:
            layer.include.add().CopyFrom(r)
        for r in v1.exclude:
            layer.exclude.add().CopyFrom(r)
        if v1.HasField("type"):
            layer.type = V1_TYPE_NAMES.get(type_name, type_name)
        for b in v1.blobs:
            layer.blobs.add().CopyFrom(b)

        def spec(i: int) -> "caffe_pb2.ParamSpec":
            while len(layer.param) <= i:
                layer.param.add()
            return layer.param[i]

        for i, name in enumerate(v1.param):
            spec(i).name = name
        for i, mode in enumerate(v1.blob_share_mode):
            spec(i).share_mode = mode  # STRICT/PERMISSIVE have the same numbers in both enums
        for i, lr in enumerate(v1.blobs_lr):
            spec(i).lr_mult = lr
        for i, decay in enumerate(v1.weight_decay):
            spec(i).decay_mult = decay
        layer.loss_weight.extend(v1.loss_weight)
        for fd, value in v1.ListFields():
            if fd.name in _V1_SPECIAL or fd.name not in new_fields:
                continue
            getattr(layer, fd.name).CopyFrom(value)
        upgraded.append(layer)
    del net.layers[:]
    net.layer.extend(upgraded)


def _upgrade_input(net: "caffe_pb2.NetParameter", source: str) -> None:
    has_shape, has_dim = len(net.input_shape) > 0, len(net.input_dim) > 0
    if has_shape or has_dim:
        if has_shape and len(net.input_shape) < len(net.input):
            raise UserError(f"{source}: {len(net.input)} inputs but {len(net.input_shape)} input_shape entries")
        if has_dim and not has_shape and len(net.input_dim) < 4 * len(net.input):
            raise UserError(
                f"{source}: {len(net.input)} inputs need {4 * len(net.input)} input_dim values, "
                f"found {len(net.input_dim)}")
        layer = caffe_pb2.LayerParameter(name="input", type="Input")
        for i, top in enumerate(net.input):
            layer.top.append(top)
            shape = layer.input_param.shape.add()
            if has_shape:
                shape.CopyFrom(net.input_shape[i])
            else:
                shape.dim.extend(net.input_dim[4 * i: 4 * i + 4])
        layers = [layer] + list(net.layer)
        del net.layer[:]
        net.layer.extend(layers)
    net.ClearField("input")
    net.ClearField("input_shape")
    net.ClearField("input_dim")
