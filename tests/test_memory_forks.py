"""Golden tests for the fork layers' allocations (SSD, SegNet, py-faster-rcnn, DeepLab v2,
generalized pooling), one tiny inline net per rule, expectations as hand arithmetic.

Each expectation names the fork source it comes from (the rules' docstrings give file:line):
weiliu89/caffe branch ``ssd``, alexgkendall/caffe-segnet, rbgirshick/caffe-fast-rcnn branch
``faster-rcnn``, maweifei/deeplab-ver2, ilovecv/general-pooling-1.
"""

from __future__ import annotations

from caffemem.memory import Kind, MemoryEnv, model_memory, replay
from caffemem.net import BuildOptions, build_net
from caffemem.netfilter import NetState
from caffemem.pb import caffe_pb2
from caffemem.prototxt import parse_text
from caffemem.upgrade import upgrade_net

F = 4  # sizeof(float), sizeof(int)


def build(text: str, phase: str = "TRAIN"):
    p = parse_text(text, caffe_pb2.NetParameter())
    upgrade_net(p)
    net = build_net(p, NetState(phase), BuildOptions())
    net.label = "net"
    return net


def env_for(scenario: str, mode: str, engine: str, **kw) -> MemoryEnv:
    return MemoryEnv(scenario=scenario, mode=mode, engine=engine if mode == "gpu" else "caffe",
                     **kw)


def run(text: str, scenario: str = "time", mode: str = "cpu", engine: str = "caffe", **kw):
    return model_memory([build(text)], env_for(scenario, mode, engine, **kw))


def dev(report, layer: str, kind: str) -> int:
    """Bytes of ``kind`` live at the peak for ``layer``: device in gpu mode, host in cpu mode."""
    l = report.layer(layer)
    return (l.device if report.gpu else l.host).get(kind, 0)


def host(report, layer: str, kind: str) -> int:
    return report.layer(layer).host.get(kind, 0)


def mem(text: str, name: str, scenario: str = "time", mode: str = "gpu",
        engine: str = "cudnn", **kw):
    """The replay's SyncedMemory called ``name`` ("<layer> <buffer>")."""
    rp = replay([build(text)], env_for(scenario, mode, engine, **kw))
    found = [m for m in rp.memory.mems if m.name == name]
    assert len(found) == 1, [m.name for m in rp.memory.mems]
    return found[0]


def inp(name: str, *dims: int) -> str:
    shape = " ".join(f"dim: {d}" for d in dims)
    return (f'layer {{ name: "{name}" type: "Input" top: "{name}" '
            f'input_param {{ shape {{ {shape} }} }} }}\n')


N, C, H, W = 2, 3, 4, 5
X = N * C * H * W * F  # 480 bytes: one [2, 3, 4, 5] blob


# --- SSD: Normalize ------------------------------------------------------------------------

NORM = inp("x", N, C, H, W) + 'layer { name: "n" type: "Normalize" bottom: "x" top: "y" %s }'


def test_normalize_across_spatial_gpu_forward():
    r = run(NORM % "", scenario="test", mode="gpu", engine="cudnn")
    # device: buffer_ [C*H*W] = 60 floats (one image) + sum_channel_multiplier_ [C] = 3
    assert dev(r, "n", Kind.INTERNAL) == (C * H * W + C) * F  # 252
    # host: both multipliers filled in LayerSetUp ([C] + [H*W]) + the across-spatial norm_ [N]
    assert host(r, "n", Kind.INTERNAL) == (C + H * W + N) * F  # 100
    # channel_shared: the GPU code reads the one scale on the host only
    assert dev(r, "n", Kind.PARAMS) == 0 and host(r, "n", Kind.PARAMS) == F


def test_normalize_per_location_norm_and_backward_buffers():
    text = NORM % "norm_param { across_spatial: false channel_shared: false }"
    r = run(text, scenario="time", mode="gpu", engine="cudnn")
    fwd = (C * H * W + C + N * H * W) * F  # buffer_, sum_channel_multiplier_, norm_ [N*H*W]
    bwd = (C + H * W + H * W) * F  # buffer_channel_ [C], buffer_spatial_ [H*W], sum_spatial on GPU
    assert dev(r, "n", Kind.INTERNAL) == fwd + bwd  # 392 + 172
    # Backward writes the top and bottom diffs with no propagate_down check (no loss here)
    assert dev(r, "n", Kind.DIFFS) == X  # top diff (the bottom's is the Input's)
    assert dev(r, "x", Kind.DIFFS) == X
    assert dev(r, "n", Kind.PARAMS) == C * F  # per-channel scale read on the GPU


def test_normalize_cpu_everything_on_the_host():
    r = run(NORM % "", scenario="time")
    # setup: [C] + [H*W]; forward: buffer_ [C*H*W], norm_ [N]; backward: [C] + [H*W]
    assert dev(r, "n", Kind.INTERNAL) == (C + H * W + C * H * W + N + C + H * W) * F


# --- SSD: Permute -------------------------------------------------------------------------

def test_permute_copies_unless_natural_order():
    perm = inp("x", N, C, H, W) + ('layer { name: "p" type: "Permute" bottom: "x" top: "y" '
                                   'permute_param { order: 0 order: 2 order: 3 order: 1 } }')
    r = run(perm, scenario="time", mode="gpu", engine="cudnn")
    assert dev(r, "p", Kind.ACTIVATIONS) == X
    assert dev(r, "p", Kind.DIFFS) == X  # unconditional top diff; bottom diff on the Input
    # permute_order_, old_steps_, new_steps_: 4 ints each, host at set up, read on the GPU
    assert dev(r, "p", Kind.INTERNAL) == host(r, "p", Kind.INTERNAL) == 3 * 4 * F
    natural = inp("x", N, C, H, W) + (
        'layer { name: "p" type: "Permute" bottom: "x" top: "y" '
        'permute_param { order: 0 order: 1 } }\n'
        'layer { name: "r" type: "ReLU" bottom: "y" top: "z" }')
    r = run(natural, scenario="time", mode="gpu", engine="cudnn")
    assert dev(r, "p", Kind.ACTIVATIONS) == 0 and dev(r, "p", Kind.DIFFS) == 0  # ShareData/Diff
    assert dev(r, "x", Kind.ACTIVATIONS) == X  # the ReLU reads the shared data
    assert dev(r, "p", Kind.INTERNAL) == 0 and host(r, "p", Kind.INTERNAL) == 3 * 4 * F


# --- SSD: PriorBox, DetectionOutput, DetectionEvaluate --------------------------------------

def test_priorbox_top_on_the_host_and_no_bottom_read():
    text = inp("f", 1, 8, 3, 3) + inp("img", 1, 3, 30, 30) + (
        'layer { name: "pb" type: "PriorBox" bottom: "f" bottom: "img" top: "p" '
        'prior_box_param { min_size: 10 aspect_ratio: 2 flip: true variance: 0.1 } }')
    r = run(text, scenario="test", mode="gpu", engine="cudnn")
    priors = 3 * 3 * 3  # 3x3 cells x 3 priors (ratios 1, 2, 1/2)
    assert host(r, "pb", Kind.ACTIVATIONS) == 2 * priors * 4 * F  # [1, 2, 108]
    assert dev(r, "pb", Kind.ACTIVATIONS) == 0
    # nothing on the device: the bottoms' data are never read
    assert sum(l.device_bytes for n in r.nets for l in n.layers) == 0
    assert r.layer("pb").host.get(Kind.INTERNAL, 0) == 0


P, K = 3, 5  # priors, classes
LOC, CONF = N * P * 4 * F, N * P * K * F  # 96, 120 bytes
DET = (inp("loc", N, P * 4) + inp("conf", N, P * K) + inp("prior", 1, 2, P * 4) +
       'layer { name: "det" type: "DetectionOutput" bottom: "loc" bottom: "conf" bottom: "prior" '
       'top: "out" detection_output_param { num_classes: 5 %s '
       'nms_param { nms_threshold: 0.45 } } }\n'
       + inp("gt", 1, 1, 2, 8) +
       'layer { name: "eval" type: "DetectionEvaluate" bottom: "out" bottom: "gt" top: "ev" '
       'detection_evaluate_param { num_classes: 5 } }')


def test_detection_output_gpu_buffers():
    r = run(DET % "", scenario="test", mode="gpu", engine="cudnn")
    # device: bbox_preds_ (decoded boxes, loc-sized) + conf_permute_ (conf-sized)
    assert dev(r, "det", Kind.INTERNAL) == LOC + CONF  # 216
    # host: both read back for NMS (share_location: bbox_preds_ itself)
    assert host(r, "det", Kind.INTERNAL) == LOC + CONF
    # detections written on the host [1, 1, 1, 7]; DetectionEvaluate is CPU only
    assert host(r, "det", Kind.ACTIVATIONS) == 7 * F and dev(r, "det", Kind.ACTIVATIONS) == 0
    assert host(r, "eval", Kind.ACTIVATIONS) == (4 + 1) * 5 * F  # [1, 1, 4 positives + 1 row, 5]
    assert dev(r, "eval", Kind.INTERNAL) == host(r, "eval", Kind.INTERNAL) == 0


def test_detection_output_per_class_locations_and_cpu():
    text = DET.replace(f"dim: {P * 4} }}", f"dim: {P * K * 4} }}", 1) % "share_location: false"
    r = run(text, scenario="test", mode="gpu", engine="cudnn")
    loc = N * P * K * 4 * F  # 480 bytes: one box per class
    # device: bbox_preds_ + bbox_permute_ (both loc-sized) + conf_permute_
    assert dev(r, "det", Kind.INTERNAL) == 2 * loc + CONF
    assert host(r, "det", Kind.INTERNAL) == loc + CONF  # bbox_permute_, conf_permute_ read back
    assert dev(run(DET % "", scenario="test"), "det", Kind.INTERNAL) == 0  # CPU: C++ vectors


def test_detection_evaluate_reshape_reads_the_detections_at_set_up():
    rp = replay([build(DET % "")], env_for("test", "gpu", "cudnn"))
    out = [m for m in rp.memory.mems if m.name == "out data"][0]
    assert out.host_by == "net: eval SetUp" and out.dev_at is None


# --- SSD: MultiBoxLoss ----------------------------------------------------------------------

def mbox(params: str) -> str:
    """loc and conf from InnerProducts (so both need backward), priors and labels as inputs."""
    return (inp("x", N, 6) +
            'layer { name: "loc_ip" type: "InnerProduct" bottom: "x" top: "loc" '
            f'inner_product_param {{ num_output: {P * 4} }} }}\n'
            'layer { name: "conf_ip" type: "InnerProduct" bottom: "x" top: "conf" '
            f'inner_product_param {{ num_output: {P * K} }} }}\n'
            + inp("prior", 1, 2, P * 4) + inp("label", 1, 1, 1, 8) +
            'layer { name: "mbox" type: "MultiBoxLoss" bottom: "loc" bottom: "conf" '
            'bottom: "prior" bottom: "label" top: "loss" propagate_down: true '
            'propagate_down: true propagate_down: false propagate_down: false '
            f'multibox_loss_param {{ num_classes: {K} {params} }} }}')


R = N * P  # confidence rows without mining: every prior of every image
RK = R * K * F  # 120 bytes: one [R, K] blob (= conf's count)


def test_multibox_loss_without_mining_gpu():
    r = run(mbox("mining_type: NONE"), scenario="time", mode="gpu", engine="cudnn")
    # device internal: inner loss tops loc_loss_/conf_loss_ data and diff (4 x 4 bytes);
    # loc_pred_, loc_gt_, SmoothL1's diff_ and errors_ at LayerSetUp's [1, 4] (4 x 16 bytes);
    # conf_gt_ [R] = 24; inner SoftmaxWithLoss prob_ and its diff [R*K] (2 x 120);
    # loc_pred_'s diff in Backward [1, 4] = 16.  (cuDNN softmax: no scale_.)
    assert dev(r, "mbox", Kind.INTERNAL) == 4 * 4 + 4 * 16 + R * F + 2 * RK + 16  # 360
    # conf_pred_'s diff is bottom 1's diff (ShareDiff): counted here, not at conf_ip
    assert dev(r, "mbox", Kind.DIFFS) == RK + F  # + the loss top's diff
    assert dev(r, "conf_ip", Kind.DIFFS) == 0
    assert dev(r, "loc_ip", Kind.DIFFS) == LOC  # loc's own diff
    # host internal: set up: loss weights (2 x 4), prob_ diff at the fake [1, K] and the
    # softmax's sum_multiplier_ [K]; forward: loss values (2 x 4), loc_pred_/loc_gt_ (2 x 16),
    # conf_gt_ [R]; backward: loc_pred_'s diff (16)
    assert host(r, "mbox", Kind.INTERNAL) == 8 + 2 * K * F + 8 + 32 + R * F + 16  # 128
    assert host(r, "mbox", Kind.DIFFS) == RK + F


def test_multibox_loss_without_mining_caffe_softmax_and_cpu():
    g = run(mbox("mining_type: NONE"), scenario="time", mode="gpu", engine="caffe")
    # the Caffe softmax adds scale_ [R] and reads sum_multiplier_ [K] on the device
    assert dev(g, "mbox", Kind.INTERNAL) == 360 + R * F + K * F
    c = run(mbox("mining_type: NONE"), scenario="time")
    # CPU: everything on the host, once: setup 8 + K*4 (prob_ diff fake) + K*4 (sum_multiplier);
    # forward: loss values 8, loc_pred_/loc_gt_/diff_/errors_ 64, conf_gt_ R*4, prob_ and its
    # diff 2*RK, softmax scale_ R*4; backward: loc_pred_'s diff 16
    assert dev(c, "mbox", Kind.INTERNAL) == 8 + 2 * K * F + 8 + 64 + 2 * R * F + 2 * RK + 16
    assert dev(c, "mbox", Kind.DIFFS) == RK + F


def test_multibox_loss_mining_temporaries_on_the_gpu():
    text = mbox("")  # mining_type defaults to MAX_NEGATIVE
    # ComputeConfLossGPU (bbox_util.cu): match_blob and conf_loss_blob [N*P] on host and
    # device, prob_blob [N*P*K] on the device, all freed when it returns
    for name, sides, size in (("mbox mining match_blob", {"host", "gpu"}, N * P * F),
                              ("mbox mining conf_loss_blob", {"host", "gpu"}, N * P * F),
                              ("mbox mining prob_blob", {"gpu"}, CONF)):
        m = mem(text, name)
        assert m.transient and m.nbytes == size
        assert {s for s, _, _ in m.spans} == sides
    # mined rows are data-dependent: conf_pred_ gets its own [1, K] at LayerSetUp's shape
    m = mem(text, "mbox conf_pred")
    assert m.nbytes == K * F and m.dev_at is not None and m.host_at is not None
    # and bottom 1 keeps its own diff
    r = run(text, scenario="time", mode="gpu", engine="cudnn")
    assert dev(r, "conf_ip", Kind.DIFFS) == CONF
    # CPU_ONLY build: ComputeConfLoss works on C++ vectors, no temporaries
    rp = replay([build(text)], env_for("time", "cpu", "caffe"))
    assert not [m for m in rp.memory.mems if "mining" in m.name]


def test_multibox_loss_logistic_uses_conf_gt_diff_as_gpu_scratch():
    m = mem(mbox("mining_type: NONE conf_loss_type: LOGISTIC"), "mbox conf_gt diff")
    assert m.nbytes == RK and m.dev_at is not None and m.host_at is None
    assert mem(mbox("mining_type: NONE conf_loss_type: LOGISTIC"), "mbox conf_gt").nbytes == RK


# --- SSD / py-faster-rcnn: SmoothL1Loss, ROIPooling -----------------------------------------

def smooth(n_bottoms: int) -> str:
    text = "".join(inp(f"b{i}", N, 4) for i in range(n_bottoms))
    bottoms = " ".join(f'bottom: "b{i}"' for i in range(n_bottoms))
    return text + f'layer {{ name: "l" type: "SmoothL1Loss" {bottoms} top: "loss" }}'


def test_smooth_l1_faster_rcnn_layout():
    b = N * 4 * F  # 32 bytes: one bottom
    r = run(smooth(4), scenario="test", mode="gpu", engine="cudnn")
    assert dev(r, "l", Kind.INTERNAL) == 3 * b  # ones_ (read on the GPU), diff_, errors_
    assert host(r, "l", Kind.INTERNAL) == b  # ones_ filled in Reshape
    assert host(r, "l", Kind.ACTIVATIONS) == F  # the loss written on the host
    # CPU: Forward_cpu is NOT_IMPLEMENTED: only Reshape's ones_
    assert dev(run(smooth(4), scenario="test"), "l", Kind.INTERNAL) == b


def test_smooth_l1_ssd_layout():
    b = N * 4 * F
    assert dev(run(smooth(3), scenario="test", mode="gpu", engine="cudnn"), "l",
               Kind.INTERNAL) == 2 * b  # diff_, errors_
    assert dev(run(smooth(2), scenario="test"), "l", Kind.INTERNAL) == 2 * b  # on the host


def test_roi_pooling_argmax_and_no_cpu_backward():
    text = inp("f", 1, C, 8, 8) + inp("rois", 4, 5) + (
        'layer { name: "roi" type: "ROIPooling" bottom: "f" bottom: "rois" top: "pooled" '
        'roi_pooling_param { pooled_h: 2 pooled_w: 3 spatial_scale: 0.5 } }')
    top = 4 * C * 2 * 3 * F  # [4 rois, C, 2, 3]
    g = run(text, scenario="time", mode="gpu", engine="cudnn")
    assert dev(g, "roi", Kind.INTERNAL) == top  # max_idx_ (int)
    c = run(text, scenario="time")
    assert dev(c, "roi", Kind.INTERNAL) == top
    assert c.by_kind.get(Kind.DIFFS, 0) == 0  # Backward_cpu is NOT_IMPLEMENTED


# --- SegNet: BN, DenseImageData, Upsample ---------------------------------------------------

BN = inp("x", N, C, H, W) + 'layer { name: "bn" type: "BN" bottom: "x" top: "x" %s }'


def test_segnet_bn_learn_gpu():
    r = run(BN % "", scenario="test", mode="gpu", engine="cudnn")
    # spatial_mean_, spatial_variance_ [N*C]; batch_mean_, batch_variance_ [C]
    small = (N * C + N * C + C + C) * F
    mult = (H * W + N) * F  # spatial_sum_multiplier_, batch_sum_multiplier_ on the device
    assert dev(r, "bn", Kind.INTERNAL) == 2 * X + small + mult  # buffer_blob_ + x_norm_
    assert host(r, "bn", Kind.INTERNAL) == 2 * mult  # the multipliers' data and diff (Reshape)


def test_segnet_bn_inference_keeps_no_x_norm():
    r = run(BN % "bn_param { bn_mode: INFERENCE }", scenario="test", mode="gpu", engine="cudnn")
    # buffer_blob_, spatial_mean_, spatial_variance_, the multipliers
    assert dev(r, "bn", Kind.INTERNAL) == X + 2 * N * C * F + (H * W + N) * F


def test_segnet_bn_cpu_backward_is_unconditional():
    text = BN % "param { lr_mult: 0 } param { lr_mult: 0 }"
    r = run(text, scenario="time")  # no loss, frozen params: Backward still runs in caffe time
    assert dev(r, "bn", Kind.PARAM_DIFFS) == 2 * C * F  # scale and shift diffs written anyway
    assert dev(r, "x", Kind.DIFFS) == X  # the (in-place) bottom diff
    # setup 2*(H*W + N); forward buffer_blob_, x_norm_, [N*C] x 2, [C] x 2;
    # backward: spatial_variance_ and spatial_mean_ diffs [N*C] x 2
    assert dev(r, "bn", Kind.INTERNAL) == 2 * (H * W + N) * F + 2 * X + \
        (2 * N * C + 2 * C) * F + 2 * N * C * F


def test_segnet_bn_forward_is_where_a_small_gpu_runs_out():
    text = inp("x", 1, 1, 32, 32) + (
        'layer { name: "conv" type: "Convolution" bottom: "x" top: "c" convolution_param '
        '{ num_output: 8 kernel_size: 3 pad: 1 bias_term: false } }\n'
        'layer { name: "bn" type: "BN" bottom: "c" top: "c" }')
    rp = replay([build(text)], env_for("test", "gpu", "caffe"))
    # device before BN's buffer_blob_: input 4096 + weights 288 + conv top 32768 + col_buffer
    # 36864, BN params 2 x 32, multipliers 4096 + 4, spatial_mean_ 32 = 78212; buffer_blob_
    # (32768) takes it to 110980
    hit = rp.first_allocation_over(100_000, min_bytes=1)
    assert (hit.call, hit.what, hit.nbytes, hit.live_before) == \
        ("net: bn Forward", "bn buffer_blob", 32768, 78212)


DENSE = ('layer { name: "d" type: "DenseImageData" top: "data" top: "label" '
         'dense_image_data_param { source: "x.txt" batch_size: 2 new_height: 6 new_width: 7 } }\n'
         'layer { name: "r" type: "ReLU" bottom: "data" top: "o" }')


def test_dense_image_data_one_host_batch_copied_into_own_tops():
    data, label = 2 * 3 * 6 * 7 * F, 2 * 1 * 6 * 7 * F
    g = run(DENSE, scenario="test", mode="gpu", engine="cudnn")
    assert host(g, "d", Kind.PREFETCH) == data + label  # prefetch_data_, prefetch_label_
    assert dev(g, "d", Kind.PREFETCH) == 0  # the old base layer never cudaMallocs them
    assert dev(g, "d", Kind.ACTIVATIONS) == data + label  # Forward copies into the tops
    c = run(DENSE, scenario="test", prefetch=7)  # env.prefetch does not apply
    assert dev(c, "d", Kind.PREFETCH) == data + label


def test_upsample_never_writes_the_mask_diff():
    text = inp("x", N, C, 4, 4) + (
        'layer { name: "conv" type: "Convolution" bottom: "x" top: "c" '
        'convolution_param { num_output: 3 kernel_size: 1 } }\n'
        'layer { name: "pool" type: "Pooling" bottom: "c" top: "p" top: "mask" '
        'pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n'
        'layer { name: "up" type: "Upsample" bottom: "p" bottom: "mask" top: "u" '
        'upsample_param { scale: 2 } }\n'
        'layer { name: "l" type: "EuclideanLoss" bottom: "u" bottom: "x" top: "loss" }')
    rp = replay([build(text)], env_for("train", "cpu", "caffe"))
    by = {m.name: (m.host_by, m.nbytes) for m in rp.memory.mems}
    assert by["p diff"] == ("net: up Backward", N * C * 2 * 2 * F)  # [2, 3, 2, 2]
    # (the mask's diff, if anything allocates it, is not Upsample's doing)
    assert by.get("mask diff", ("",))[0] != "net: up Backward"
    assert dev(run(text, scenario="train"), "up", Kind.INTERNAL) == 0


# --- SSD data layers -------------------------------------------------------------------------

ANNO = ('layer { name: "d" type: "AnnotatedData" top: "data" top: "label" '
        'data_param { source: "x" batch_size: 2 } '
        'transform_param { mean_value: 104 mean_value: 117 mean_value: 123 '
        'resize_param { resize_mode: WARP height: 8 width: 8 } } }\n'
        'layer { name: "r" type: "ReLU" bottom: "data" top: "o" }')


def test_annotated_data_three_batches_and_own_tops():
    data, label = 2 * 3 * 8 * 8 * F, 8 * F  # [2, 3, 8, 8] and the [1, 1, 1, 8] box list
    g = run(ANNO, scenario="test", mode="gpu", engine="cudnn", prefetch=2)
    # PREFETCH_COUNT = 3 batches, host and device at set up (env.prefetch does not apply)
    assert dev(g, "d", Kind.PREFETCH) == host(g, "d", Kind.PREFETCH) == 3 * (data + label)
    assert dev(g, "d", Kind.ACTIVATIONS) == data + label  # Forward copies into the tops
    c = run(ANNO, scenario="test")
    assert dev(c, "d", Kind.PREFETCH) == 3 * (data + label)


def test_video_data_batches_have_labels_per_image():
    text = ('layer { name: "v" type: "VideoData" top: "data" top: "label" '
            'data_param { batch_size: 2 } video_data_param { video_type: VIDEO video_file: "a" } '
            'transform_param { crop_size: 8 } }')
    g = run(text, scenario="test", mode="gpu", engine="cudnn")
    assert dev(g, "v", Kind.PREFETCH) == 3 * (2 * 3 * 8 * 8 + 2) * F


# --- DeepLab: Interp ------------------------------------------------------------------------

def test_interp_reads_bottom0_only_and_keeps_no_buffer():
    text = inp("x", 1, 2, 4, 4) + inp("ref", 1, 1, 8, 8) + (
        'layer { name: "i" type: "Interp" bottom: "x" bottom: "ref" top: "y" }')
    r = run(text, scenario="time", mode="gpu", engine="cudnn")
    assert dev(r, "x", Kind.ACTIVATIONS) == 2 * 4 * 4 * F
    assert dev(r, "ref", Kind.ACTIVATIONS) == 0  # only its shape is used
    assert dev(r, "i", Kind.ACTIVATIONS) == 2 * 8 * 8 * F
    assert dev(r, "i", Kind.INTERNAL) == 0
    assert r.by_kind.get(Kind.DIFFS, 0) == 0  # Backward returns unless bottom 0 propagates


# --- generalized pooling ----------------------------------------------------------------------

def treepool(type_: str) -> str:
    return inp("x", 1, 2, 5, 5) + (
        f'layer {{ name: "t" type: "{type_}" bottom: "x" top: "y" '
        'convolution_param { kernel_size: 3 stride: 2 weight_filler { type: "gaussian" } } }')


TOP = 1 * 2 * 2 * 2 * F  # ceil((5 - 3) / 2) + 1 = 2: [1, 2, 2, 2] = 32 bytes
BOT = 1 * 2 * 5 * 5 * F  # 200 bytes
KK = 9


def test_treepool_kernel_1l_gpu_buffers():
    r = run(treepool("TreepoolKernel1L"), scenario="time", mode="gpu", engine="cudnn")
    fwd = 4 * TOP  # split_buffer1/2, resp_buffer1/2
    bwd = TOP + KK * TOP + KK * BOT + KK * F  # mat_buffer_, col_buffer_, bottom_diff_buffer_,
    assert dev(r, "t", Kind.INTERNAL) == fwd + bwd  # bias_multiplier2_ read on the GPU
    assert host(r, "t", Kind.INTERNAL) == KK * F  # bias_multiplier2_ (bias_multiplier_: 0 bytes)
    assert dev(r, "t", Kind.PARAM_DIFFS) == 3 * KK * F  # every param diff, unconditionally
    assert dev(r, "x", Kind.DIFFS) == BOT


def test_treepool_other_variants():
    r2 = run(treepool("TreepoolKernel2L"), scenario="time", mode="gpu", engine="cudnn")
    assert dev(r2, "t", Kind.INTERNAL) == 10 * TOP + 2 * TOP + KK * TOP + KK * BOT + KK * F
    ma = run(treepool("TreepoolMaxAve"), scenario="time", mode="gpu", engine="cudnn")
    assert dev(ma, "t", Kind.INTERNAL) == 6 * TOP + KK * TOP + KK * BOT + KK * F
    g = run(treepool("GatedMaxAve"), scenario="time", mode="gpu", engine="cudnn")
    # bias_multiplier1_ [top] (host, then the GPU in Backward), weight1_diff_buffer_ [K*K x top]
    assert dev(g, "t", Kind.INTERNAL) == TOP + KK * TOP
    assert host(g, "t", Kind.INTERNAL) == TOP


def test_treepool_cpu_code_touches_nothing():
    r = run(treepool("TreepoolKernel1L"), scenario="time")
    assert dev(r, "t", Kind.INTERNAL) == KK * F  # LayerSetUp's bias_multiplier2_ only
    assert dev(r, "t", Kind.ACTIVATIONS) == 0 and r.by_kind.get(Kind.DIFFS, 0) == 0
