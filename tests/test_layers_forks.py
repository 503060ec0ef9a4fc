"""Fork layer rules (SSD, SegNet, py-faster-rcnn, DeepLab v2, generalized/tree pooling).

Part (a) runs each rule on a hand-built LayerCtx and compares with a shape derived by hand
from the fork's SetUp/Reshape (the derivation is in the comment next to each case).
Part (b) replays real Caffe logs from ../shared/realworld/paired: for every fork layer of the
paired prototxt, the bottom shapes Caffe printed are fed to the rule and its tops are
compared with the "Top shape" lines Caffe printed for that layer.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from caffemem.errors import NetError
from caffemem.layers import lookup
from caffemem.layers.base import LayerCtx, NeedsInputShape
from caffemem.pb import caffe_pb2
from caffemem.prototxt import parse_text

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PAIRED = SHARED / "realworld" / "paired"


def needs(*fields: str) -> None:
    """Skip when the compiled schema lacks a fork's LayerParameter field."""
    have = caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name
    missing = [f for f in fields if f not in have]
    if missing:
        pytest.skip(f"caffemem/caffe_pb2.py lacks LayerParameter.{', '.join(missing)}: "
                    f"the schema with the forks' messages is not compiled in")


def needs_in(message: str, field: str) -> None:
    """Skip when the compiled schema's ``message`` lacks a fork's ``field``."""
    if field not in getattr(caffe_pb2, message).DESCRIPTOR.fields_by_name:
        pytest.skip(f"caffemem/caffe_pb2.py lacks {message}.{field}: the schema with the forks' "
                    f"messages is not compiled in")


def make(type_: str, text: str = "", bottoms=(), tops=("t",), phase="TRAIN", batch=None,
         overrides=None) -> LayerCtx:
    param = parse_text(f'name: "x" type: "{type_}" {text}', caffe_pb2.LayerParameter())
    return LayerCtx(name="x", type=type_, param=param,
                    bottoms=[f"b{i}" for i in range(len(bottoms))], tops=list(tops),
                    bottom_shapes=[tuple(b) for b in bottoms], phase=phase,
                    batch_override=batch, overrides=dict(overrides or {}))


def run(ctx: LayerCtx):
    rule = lookup(ctx.type)
    assert rule is not None, f"no rule registered for {ctx.type}"
    setup = rule.setup(ctx)
    ctx.top_shapes, ctx.param_shapes = list(setup.tops), list(setup.params)
    return setup


def tops(*args, **kw):
    return run(make(*args, **kw)).tops


# ================================================================ (a) hand-derived cases


def test_registered_with_fork_names():
    expected = {
        "ssd": ["AnnotatedData", "VideoData", "Normalize", "Permute", "PriorBox", "DetectionOutput",
                "DetectionEvaluate", "MultiBoxLoss"],
        "segnet": ["Upsample", "BN", "DenseImageData"],
        "frcnn": ["ROIPooling", "SmoothL1Loss"],
        "deeplab": ["Interp"],
        "treepool": ["TreepoolKernel1L", "TreepoolKernel2L", "TreepoolMaxAve", "GatedMaxAve"],
    }
    for fork, types in expected.items():
        for t in types:
            rule = lookup(t)
            assert rule is not None and rule.fork == fork, t
    assert lookup("MultiBoxLoss").is_loss and lookup("SmoothL1Loss").is_loss
    assert lookup("AnnotatedData").is_data and lookup("DenseImageData").is_data
    assert lookup("VideoData").is_data


# ---------------------------------------------------------------- SSD

SSD_TRANSFORM = ('transform_param { mean_value: 104 mean_value: 117 mean_value: 123 '
                 'resize_param { resize_mode: WARP height: 300 width: 300 } } ')


def test_annotated_data_resize_and_label():
    needs("annotated_data_param")
    # 3 mean values -> C = 3; WARP resize -> 300 x 300; batch 16 in front.
    # Label: [1, 1, max(boxes in first record, 1), 8]; the record is unknown -> 1.
    t = tops("AnnotatedData", SSD_TRANSFORM + "data_param { batch_size: 16 }", tops=("data", "label"))
    assert t == [(16, 3, 300, 300), (1, 1, 1, 8)]
    # --batch 4 replaces batch_size
    t = tops("AnnotatedData", SSD_TRANSFORM + "data_param { batch_size: 16 }", tops=("data", "label"),
             batch=4)
    assert t[0] == (4, 3, 300, 300)
    # one top: no label
    assert tops("AnnotatedData", SSD_TRANSFORM + "data_param { batch_size: 2 }", tops=("data",)) == \
        [(2, 3, 300, 300)]


def test_annotated_data_crop_overrides_resize():
    needs("annotated_data_param")
    # crop_size wins over the resize: 224 x 224
    t = tops("AnnotatedData", 'transform_param { crop_size: 224 force_color: true '
             'resize_param { height: 256 width: 256 } } data_param { batch_size: 8 }', tops=("d",))
    assert t == [(8, 3, 224, 224)]
    # crop_h alone: H = 200 from the crop, W = 400 from the resize (shape[3] = crop_w ? : width)
    t = tops("AnnotatedData", 'transform_param { crop_h: 200 force_gray: true '
             'resize_param { height: 300 width: 400 } } data_param { batch_size: 1 }', tops=("d",))
    assert t == [(1, 1, 200, 400)]
    # crop larger than the resized image: CHECK_GE(height, crop_h) fails
    with pytest.raises(NetError):
        tops("AnnotatedData", 'transform_param { crop_size: 320 force_color: true '
             'resize_param { height: 300 width: 300 } } data_param { batch_size: 1 }', tops=("d",))


def test_annotated_data_unknowable_shapes():
    needs("annotated_data_param")
    # no resize, no crop: the size is the first record's
    with pytest.raises(NeedsInputShape):
        tops("AnnotatedData", "transform_param { mean_value: 1 mean_value: 2 mean_value: 3 } "
             "data_param { batch_size: 4 }", tops=("data", "label"))
    # size known but no channel hint
    with pytest.raises(NeedsInputShape):
        tops("AnnotatedData", "transform_param { resize_param { height: 300 width: 300 } } "
             "data_param { batch_size: 4 }", tops=("data", "label"))
    # FIT_SMALL_SIZE keeps the image's aspect: unknown (and it needs batch 1)
    with pytest.raises(NeedsInputShape):
        tops("AnnotatedData", "transform_param { force_color: true resize_param { resize_mode: "
             "FIT_SMALL_SIZE height: 300 width: 300 } } data_param { batch_size: 1 }", tops=("d",))
    with pytest.raises(NetError, match="FIT_SMALL_SIZE"):
        tops("AnnotatedData", "transform_param { force_color: true resize_param { resize_mode: "
             "FIT_SMALL_SIZE height: 300 width: 300 } } data_param { batch_size: 2 }", tops=("d",))
    # an --input for the image top lets the label through
    t = tops("AnnotatedData", "data_param { batch_size: 4 }", tops=("data", "label"),
             overrides={0: (4, 3, 500, 500)})
    assert t == [(4, 3, 500, 500), (1, 1, 1, 8)]


def test_video_data():
    needs("video_data_param")
    # OpenCV frames are BGR: C = 3; resize 300 x 300; labels [batch]
    t = tops("VideoData", 'transform_param { resize_param { height: 300 width: 300 } } '
             'data_param { batch_size: 2 } video_data_param { video_type: VIDEO video_file: "a.mp4" }',
             tops=("data", "label"))
    assert t == [(2, 3, 300, 300), (2,)]
    with pytest.raises(NeedsInputShape):
        tops("VideoData", 'data_param { batch_size: 2 } video_data_param { video_type: WEBCAM }')


def test_normalize_scale_blob():
    needs("norm_param")
    # channel_shared (default true): the scale is Blob(vector<int>(0)), a 0-axis scalar
    s = run(make("Normalize", "", [(8, 512, 38, 38)]))
    assert s.tops == [(8, 512, 38, 38)] and s.params == [()]
    # channel_shared false: one scale per channel
    s = run(make("Normalize", "norm_param { across_spatial: false channel_shared: false }",
                 [(8, 512, 38, 38)]))
    assert s.tops == [(8, 512, 38, 38)] and s.params == [(512,)]
    with pytest.raises(NetError):
        run(make("Normalize", "", [(8,)]))


def test_permute_orders():
    needs("permute_param")
    # order 0,2,3,1: N C H W -> N H W C
    assert tops("Permute", "permute_param { order: 0 order: 2 order: 3 order: 1 }",
                [(8, 16, 38, 38)]) == [(8, 38, 38, 16)]
    # order 3 only: [3] then the rest 0,1,2 in order -> (5, 2, 3, 4)
    assert tops("Permute", "permute_param { order: 3 }", [(2, 3, 4, 5)]) == [(5, 2, 3, 4)]
    # no order: identity
    assert tops("Permute", "", [(2, 3, 4, 5)]) == [(2, 3, 4, 5)]
    with pytest.raises(NetError, match="duplicate"):
        tops("Permute", "permute_param { order: 1 order: 1 }", [(2, 3, 4, 5)])
    with pytest.raises(NetError, match="less than"):
        tops("Permute", "permute_param { order: 4 }", [(2, 3, 4, 5)])


PRIOR = "prior_box_param { %s }"


def test_prior_box_counts():
    needs("prior_box_param")
    feat, img = (8, 512, 38, 38), (8, 3, 300, 300)
    # min 30, max 60, aspect 2 with flip: ratios [1, 2, 1/2] x 1 min + 1 max = 4 priors;
    # 38 * 38 * 4 * 4 = 23104
    assert tops("PriorBox", PRIOR % "min_size: 30 max_size: 60 aspect_ratio: 2 flip: true",
                [feat, img]) == [(1, 2, 23104)]
    # aspect 2 and 3, flip: [1, 2, .5, 3, 1/3] = 5, + 1 max = 6; 19 * 19 * 6 * 4 = 8664
    assert tops("PriorBox", PRIOR % "min_size: 60 max_size: 111 aspect_ratio: 2 aspect_ratio: 3",
                [(8, 1024, 19, 19), img]) == [(1, 2, 8664)]
    # 0.5 after 2 with flip is a duplicate of 1/2; 1.0 duplicates the implicit 1:
    # ratios [1, 2, .5] = 3, no max: 3 priors; 10 * 10 * 3 * 4 = 1200
    assert tops("PriorBox", PRIOR % "min_size: 30 aspect_ratio: 2 aspect_ratio: 0.5 aspect_ratio: 1",
                [(1, 1, 10, 10), img]) == [(1, 2, 1200)]
    # no flip: [1, 2]; two min sizes and two max sizes: 2 * 2 + 2 = 6; 3 x 5 map: 15 * 6 * 4
    assert tops("PriorBox", PRIOR % "min_size: 30 min_size: 60 max_size: 60 max_size: 90 "
                "aspect_ratio: 2 flip: false", [(1, 1, 3, 5), img]) == [(1, 2, 360)]


def test_prior_box_checks():
    needs("prior_box_param")
    img = (1, 3, 300, 300)
    with pytest.raises(NetError, match="min_size"):
        tops("PriorBox", PRIOR % "aspect_ratio: 2", [(1, 1, 3, 3), img])
    with pytest.raises(NetError, match="greater"):
        tops("PriorBox", PRIOR % "min_size: 60 max_size: 30", [(1, 1, 3, 3), img])
    with pytest.raises(NetError, match="variance"):
        tops("PriorBox", PRIOR % "min_size: 30 variance: 0.1 variance: 0.2", [(1, 1, 3, 3), img])
    with pytest.raises(NetError, match="step"):
        tops("PriorBox", PRIOR % "min_size: 30 step: 8 step_h: 8 step_w: 8", [(1, 1, 3, 3), img])


def test_detection_output_and_evaluate():
    needs("detection_output_param", "detection_evaluate_param")
    # 34928 / 4 = 8732 priors; loc 8732*1*4 = 34928; conf 8732 * 21 = 183372 -> [1, 1, 1, 7]
    bots = [(8, 34928), (8, 183372), (1, 2, 34928)]
    assert tops("DetectionOutput", "detection_output_param { num_classes: 21 }", bots) == [(1, 1, 1, 7)]
    assert not lookup("DetectionOutput").has_backward
    with pytest.raises(NetError, match="confidence"):
        tops("DetectionOutput", "detection_output_param { num_classes: 20 }", bots)
    # share_location false: loc must be 8732 * 21 * 4
    with pytest.raises(NetError, match="location"):
        tops("DetectionOutput", "detection_output_param { num_classes: 21 share_location: false }", bots)
    with pytest.raises(NetError, match="num_classes"):
        tops("DetectionOutput", "", bots)
    # 21 classes with background 0 -> 20 positive classes, + 1 zero-filled detection row = 21
    assert tops("DetectionEvaluate", "detection_evaluate_param { num_classes: 21 background_label_id: 0 }",
                [(1, 1, 1, 7), (1, 1, 2, 8)]) == [(1, 1, 21, 5)]
    # 5 classes -> 4 positives; 3 detection rows -> 7
    assert tops("DetectionEvaluate", "detection_evaluate_param { num_classes: 5 }",
                [(1, 1, 3, 7), (1, 1, 9, 8)]) == [(1, 1, 7, 5)]
    with pytest.raises(NetError):
        tops("DetectionEvaluate", "detection_evaluate_param { num_classes: 5 }",
             [(1, 1, 3, 6), (1, 1, 9, 8)])


def test_multibox_loss():
    needs("multibox_loss_param")
    bots = [(16, 34928), (16, 183372), (1, 2, 34928), (1, 1, 7, 8)]
    ctx = make("MultiBoxLoss", "multibox_loss_param { num_classes: 21 }", bots, tops=("loss",))
    assert run(ctx).tops == [()]
    rule = lookup("MultiBoxLoss")
    assert [rule.backward_to_bottom(ctx, i) for i in range(4)] == [True, True, False, False]
    with pytest.raises(NetError, match="confidence"):
        tops("MultiBoxLoss", "multibox_loss_param { num_classes: 20 }", bots)
    with pytest.raises(NetError, match="4 bottoms"):
        tops("MultiBoxLoss", "multibox_loss_param { num_classes: 21 }", bots[:3])


# ---------------------------------------------------------------- SegNet


def test_upsample_sizes():
    needs("upsample_param")
    b = (4, 64, 45, 60)
    # default scale 2: 45*2, 60*2
    assert tops("Upsample", "", [b, b]) == [(4, 64, 90, 120)]
    # exact size
    assert tops("Upsample", "upsample_param { upsample_h: 90 upsample_w: 121 }", [b, b]) == [(4, 64, 90, 121)]
    # pad_out_h: 45*2 - 1 = 89
    assert tops("Upsample", "upsample_param { scale: 2 pad_out_h: true }", [b, b]) == [(4, 64, 89, 120)]
    # scale_h 2, scale_w 3: 90 x 180
    assert tops("Upsample", "upsample_param { scale_h: 2 scale_w: 3 }", [b, b]) == [(4, 64, 90, 180)]
    with pytest.raises(NetError, match="scale_h == 2"):
        tops("Upsample", "upsample_param { scale: 3 pad_out_h: true }", [b, b])
    with pytest.raises(NetError, match="required"):  # scale together with scale_h/scale_w
        tops("Upsample", "upsample_param { scale: 2 scale_h: 2 scale_w: 2 }", [b, b])
    with pytest.raises(NetError, match="same shape"):
        tops("Upsample", "", [b, (4, 64, 45, 61)])
    with pytest.raises(NetError, match="2 bottoms"):
        tops("Upsample", "", [b])


def test_bn_shapes():
    needs("bn_param")
    s = run(make("BN", "", [(4, 64, 45, 60)]))
    assert s.tops == [(4, 64, 45, 60)] and s.params == [(1, 64, 1, 1), (1, 64, 1, 1)]
    # LEARN mode: tops 1, 2 = batch mean and variance [1, C, 1, 1]
    assert tops("BN", "", [(4, 64, 45, 60)], tops=("y", "m", "v")) == \
        [(4, 64, 45, 60), (1, 64, 1, 1), (1, 64, 1, 1)]
    # Reshape(num, channels, height, width): a 2-axis bottom becomes 4 axes
    assert tops("BN", "", [(4, 10)]) == [(4, 10, 1, 1)]
    with pytest.raises(NetError):
        tops("BN", "bn_param { bn_mode: INFERENCE }", [(4, 64, 45, 60)], tops=("y", "m"))


def test_dense_image_data():
    needs("dense_image_data_param")
    two = ("data", "label")
    # resized 360 x 480, color: [4, 3, 360, 480] and label [4, 1, 360, 480]
    assert tops("DenseImageData", "dense_image_data_param { batch_size: 4 new_height: 360 new_width: 480 }",
                tops=two) == [(4, 3, 360, 480), (4, 1, 360, 480)]
    # transform_param.crop_size wins, then crop_height/crop_width; gray images: C = 1
    assert tops("DenseImageData", "transform_param { crop_size: 224 } dense_image_data_param "
                "{ batch_size: 4 new_height: 360 new_width: 480 crop_height: 300 crop_width: 400 }",
                tops=two) == [(4, 3, 224, 224), (4, 1, 224, 224)]
    assert tops("DenseImageData", "dense_image_data_param { batch_size: 4 is_color: false "
                "crop_height: 300 crop_width: 400 }", tops=two, batch=2) == [(2, 1, 300, 400), (2, 1, 300, 400)]
    with pytest.raises(NeedsInputShape):
        tops("DenseImageData", "dense_image_data_param { batch_size: 4 }", tops=two)
    with pytest.raises(NetError, match="same time"):
        tops("DenseImageData", "dense_image_data_param { batch_size: 4 new_height: 360 }", tops=two)


# ---------------------------------------------------------------- py-faster-rcnn


def test_roi_pooling():
    needs("roi_pooling_param")
    # [rois.num, features.channels, pooled_h, pooled_w]
    ctx = make("ROIPooling", "roi_pooling_param { pooled_h: 7 pooled_w: 6 spatial_scale: 0.0625 }",
               [(1, 512, 38, 50), (128, 5)])
    assert run(ctx).tops == [(128, 512, 7, 6)]
    assert lookup("ROIPooling").backward_to_bottom(ctx, 0)
    assert not lookup("ROIPooling").backward_to_bottom(ctx, 1)
    with pytest.raises(NetError, match="pooled_h"):
        tops("ROIPooling", "roi_pooling_param { pooled_w: 7 }", [(1, 512, 38, 50), (128, 5)])


def test_smooth_l1_loss():
    b = (128, 84)
    # prediction, target, inside and outside weights (py-faster-rcnn); or 3 bottoms (SSD)
    assert tops("SmoothL1Loss", "", [b, b, b, b], tops=("loss",)) == [()]
    assert tops("SmoothL1Loss", "", [b, b, b], tops=("loss",)) == [()]
    assert tops("SmoothL1Loss", "", [b, b], tops=("loss",)) == [()]
    with pytest.raises(NetError):
        tops("SmoothL1Loss", "", [b, (128, 80)])
    with pytest.raises(NetError):
        tops("SmoothL1Loss", "", [b] * 5)


# ---------------------------------------------------------------- DeepLab


def test_interp_sizes():
    needs("interp_param")
    # zoom 8: 41 + 40 * 7 = 321
    assert tops("Interp", "interp_param { zoom_factor: 8 }", [(1, 21, 41, 41)]) == [(1, 21, 321, 321)]
    # shrink 8: (321 - 1) / 8 + 1 = 41
    assert tops("Interp", "interp_param { shrink_factor: 8 }", [(1, 3, 321, 321)]) == [(1, 3, 41, 41)]
    # shrink 8 of 322 x 330: 321 / 8 + 1 = 41 (integer division), 329 / 8 + 1 = 42
    assert tops("Interp", "interp_param { shrink_factor: 8 }", [(1, 3, 322, 330)]) == [(1, 3, 41, 42)]
    # both: shrink 2 of 41 -> 40 / 2 + 1 = 21, then zoom 3 -> 21 + 20 * 2 = 61
    assert tops("Interp", "interp_param { shrink_factor: 2 zoom_factor: 3 }", [(1, 21, 41, 41)]) == \
        [(1, 21, 61, 61)]
    # explicit size
    assert tops("Interp", "interp_param { height: 100 width: 200 }", [(1, 21, 41, 41)]) == \
        [(1, 21, 100, 200)]
    # a factor takes precedence over height/width
    assert tops("Interp", "interp_param { zoom_factor: 2 height: 100 width: 200 }", [(1, 21, 41, 41)]) == \
        [(1, 21, 81, 81)]
    # cropping pads: 41 - 1 - 1 = 39 effective, zoom 2: 39 + 38 = 77
    assert tops("Interp", "interp_param { zoom_factor: 2 pad_beg: -1 pad_end: -1 }", [(1, 21, 41, 41)]) == \
        [(1, 21, 77, 77)]
    # second bottom's size
    assert tops("Interp", "", [(1, 21, 41, 41), (1, 3, 321, 300)]) == [(1, 21, 321, 300)]
    with pytest.raises(NetError, match="non-positive"):
        tops("Interp", "interp_param { zoom_factor: 2 pad_beg: 1 }", [(1, 21, 41, 41)])
    with pytest.raises(NetError):
        tops("Interp", "", [(1, 21, 41, 41)])


# ---------------------------------------------------------------- generalized pooling


def test_treepool_shapes_and_params():
    conv = "convolution_param { kernel_size: 3 stride: 2 }"
    # ceil((30 - 3) / 2) + 1 = ceil(13.5) + 1 = 15 (a convolution's floor would give 14)
    s = run(make("TreepoolKernel1L", conv, [(256, 96, 30, 30)]))
    assert s.tops == [(256, 96, 15, 15)] and s.params == [(1, 1, 3, 3)] * 3
    # ceil(12 / 2) + 1 = 7 ; ceil(4 / 2) + 1 = 3
    s = run(make("TreepoolMaxAve", conv, [(256, 256, 15, 15)]))
    assert s.tops == [(256, 256, 7, 7)] and s.params == [(1, 1, 3, 3)]
    assert tops("TreepoolMaxAve", conv, [(256, 256, 7, 7)]) == [(256, 256, 3, 3)]
    assert run(make("TreepoolKernel2L", conv, [(2, 8, 9, 9)])).params == [(1, 1, 3, 3)] * 7
    # kernel 2 stride 2 on 5 x 6: ceil(3 / 2) + 1 = 3, ceil(4 / 2) + 1 = 3
    assert tops("GatedMaxAve", "convolution_param { kernel_size: 2 stride: 2 }", [(1, 4, 5, 6)]) == \
        [(1, 4, 3, 3)]
    ctx = make("TreepoolKernel1L", conv, [(256, 96, 30, 30)])
    run(ctx)
    assert lookup("TreepoolKernel1L").flops(ctx).macs == 256 * 96 * 15 * 15 * 9 * 3


# ================================================================ (b) real Caffe logs

_SETTING_UP = re.compile(r"net\.cpp:\d+\] Setting up (\S+)\s*$")
_TOP_SHAPE = re.compile(r"net\.cpp:\d+\] Top shape: ((?:\d+ )*)\(\d+\)")

# fork layer types whose tops are checked against the logs
FORK_TYPES = {"AnnotatedData", "Normalize", "Permute", "PriorBox", "DetectionOutput",
              "DetectionEvaluate", "MultiBoxLoss", "SmoothL1Loss", "TreepoolKernel1L",
              "TreepoolKernel2L", "TreepoolMaxAve", "GatedMaxAve", "Upsample", "BN",
              "DenseImageData", "ROIPooling", "Interp", "VideoData"}


def parse_log(path: Path) -> list[list[tuple[str, list[tuple[int, ...]]]]]:
    """Per net initialization: (layer name, its printed top shapes) in set-up order."""
    nets: list[list[tuple[str, list[tuple[int, ...]]]]] = []
    with open(path, errors="replace") as f:
        for line in f:
            if "Initializing net from parameters" in line:
                nets.append([])
                continue
            if not nets:
                continue
            m = _SETTING_UP.search(line)
            if m:
                nets[-1].append((m.group(1), []))
                continue
            m = _TOP_SHAPE.search(line)
            if m and nets[-1]:
                nets[-1][-1][1].append(tuple(int(d) for d in m.group(1).split()))
    return nets


def _in_phase(layer, phase: str) -> bool:
    rules_in = [r for r in layer.include if r.HasField("phase")]
    if layer.include and rules_in and not any(caffe_pb2.Phase.Name(r.phase) == phase for r in rules_in):
        return False
    if any(r.HasField("phase") and caffe_pb2.Phase.Name(r.phase) == phase for r in layer.exclude):
        return False
    return True


def replay(case: str, log: str, nets: list[tuple[str, str]]) -> dict:
    """Feed every fork layer the bottom shapes the log printed; compare its tops."""
    folder = PAIRED / case
    if not folder.exists():
        pytest.skip(f"{folder} is absent: ../shared (real Caffe logs) is not next to this checkout")
    logged = parse_log(folder / log)
    assert len(logged) == len(nets), f"{log}: {len(logged)} net initializations, expected {len(nets)}"
    checked: dict[str, int] = {}
    mismatches = []
    for (proto_name, phase), entries in zip(nets, logged):
        text = (folder / proto_name).read_text()
        if re.search(r"^net_param\s*\{", text, re.M):  # a solver with the net inline
            netp = parse_text(text, caffe_pb2.SolverParameter(), str(folder / proto_name)).net_param
        else:
            netp = parse_text(text, caffe_pb2.NetParameter(), str(folder / proto_name))
        layers = {lp.name: lp for lp in netp.layer if _in_phase(lp, phase)}
        blobs: dict[str, tuple[int, ...]] = {}
        for name, shapes in entries:
            lp = layers.get(name)
            if lp is None:  # a Split layer Caffe inserted: its tops keep the bottom's shape
                continue
            if lp.type in FORK_TYPES:
                ctx = LayerCtx(name=lp.name, type=lp.type, param=lp, bottoms=list(lp.bottom),
                               tops=list(lp.top), bottom_shapes=[blobs[b] for b in lp.bottom],
                               phase=phase)
                got = run(ctx).tops
                want = list(shapes)
                if lp.type == "AnnotatedData" and len(want) > 1:
                    # the box count (axis 2) is the first record's: data the prototxt lacks
                    assert got[1] == (1, 1, 1, 8) and want[1][:2] == (1, 1) and want[1][3] == 8, \
                        f"{case} {phase} {name}: label {got[1]} vs logged {want[1]}"
                    got, want = got[:1], want[:1]
                if got != want:
                    mismatches.append(f"{phase} {name} ({lp.type}): rule {got}, log {want}")
                checked[lp.type] = checked.get(lp.type, 0) + 1
            for top, shape in zip(lp.top, shapes):
                blobs[top] = shape
    assert not mismatches, f"{case}: " + "; ".join(mismatches)
    return checked


SSD_FIELDS = ("annotated_data_param", "prior_box_param", "norm_param", "permute_param",
              "detection_output_param", "detection_evaluate_param", "multibox_loss_param")


@pytest.mark.parametrize("case,log", [
    ("ssd_fanfancy_nwpu_bs32_1080ti", "VGG_NWPU_VHR_SSD_300x300_0319_ini.log"),
    ("ssd_imistyrain_voc0712", "VGG_VOC0712_SSD_300x300.log"),
])
def test_ssd_logs(case, log):
    needs(*SSD_FIELDS)
    checked = replay(case, log, [("train.prototxt", "TRAIN"), ("test.prototxt", "TEST")])
    # SSD300: per net 1 AnnotatedData, 1 Normalize, 6 PriorBox, 12 Permute; one MultiBoxLoss
    # (TRAIN); DetectionOutput and DetectionEvaluate (TEST)
    assert checked == {"AnnotatedData": 2, "Normalize": 2, "PriorBox": 12, "Permute": 24,
                       "MultiBoxLoss": 1, "DetectionOutput": 1, "DetectionEvaluate": 1}, checked


def test_treepool_log():
    # the net's data layer uses caffenet-benchmark's (ducha-aiki's) resize transform
    needs_in("TransformationParameter", "resize_param")
    net = "treepool_128_2048_lsuv.prototxt"
    checked = replay("cb_treepool_custom_layer", "GeneralPool128_fc_2048_unfinished.log",
                     [(net, "TRAIN"), (net, "TEST")])
    assert checked == {"TreepoolKernel1L": 2, "TreepoolMaxAve": 4}, checked
