"""The Caffe schema: proto/caffe.proto, the committed caffemem/caffe_pb2.py built from it, and
the prototxt files it must read.

* the committed module is what ``proto/caffe.proto`` compiles to (same FileDescriptorProto);
* every sample and every prototxt/solver under ../shared parses;
* well-known field numbers are Caffe's, and the caffemem-LOCAL numbers (fork fields whose
  real number another Caffe already uses; see the header of proto/caffe.proto) are exactly
  the documented ones.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2, text_format

from caffemem import caffe_pb2

ROOT = Path(__file__).resolve().parents[1]
PROTO = ROOT / "proto" / "caffe.proto"
MODULE = ROOT / "caffemem" / "caffe_pb2.py"
SAMPLES = ROOT / "samples"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"

REGEN = "python -m grpc_tools.protoc -Iproto --python_out=caffemem proto/caffe.proto"

# Files under ../shared that are known not to parse, with the reason (e.g. a fork field whose
# number truly collides and was left out of the schema).  Each is expected to fail; when one
# starts parsing, remove it from here.  Empty: every file parses today.
KNOWN_UNPARSEABLE: dict[str, str] = {}

# Fork fields that carry a caffemem-LOCAL number (real number + 1000) because the real one
# belongs to a higher-ranked Caffe.  Text format is unaffected; binary files of that fork are
# not readable for these fields.  Keep in step with the "LOCAL number" comments in the proto.
LOCAL_NUMBERS = {
    ("LayerParameter", "upsample_param"): 1137,      # SegNet 137 = BVLC embed_param
    ("LayerParameter", "interp_param"): 1143,        # DeepLab v2 143 = BVLC input_param
    ("LossParameter", "weight_by_label_freqs"): 1003,  # SegNet 3 = BVLC normalization
    ("DropoutParameter", "sample_weights_test"): 1002,  # SegNet 2 = py-faster-rcnn scale_train
    ("ResizeParameter", "center_object"): 1008,      # ducha-aiki 8 = SSD height_scale
    ("ResizeParameter", "max_angle"): 1009,          # ducha-aiki 9 = SSD width_scale
}
# Real Caffe numbers that happen to lie in 1000-1999 (legacy formats).
REAL_1000S = {
    ("V1LayerParameter", "param"): 1001,
    ("V1LayerParameter", "blob_share_mode"): 1002,
    ("V0LayerParameter", "hdf5_output_param"): 1001,
}


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------

def _serialized_file(py_source: str) -> bytes:
    """The serialized FileDescriptorProto a protoc-generated _pb2.py hands to AddSerializedFile."""
    for node in ast.walk(ast.parse(py_source)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "AddSerializedFile" and node.args
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, bytes)):
            return node.args[0].value
    raise AssertionError("no AddSerializedFile(b'...') call in the generated module")


def _describe_difference(want: bytes, got: bytes) -> str:
    a, b = descriptor_pb2.FileDescriptorProto(), descriptor_pb2.FileDescriptorProto()
    a.ParseFromString(want)
    b.ParseFromString(got)
    ma = {m.name: m for m in a.message_type}
    mb = {m.name: m for m in b.message_type}
    diffs = sorted(set(ma) ^ set(mb))
    diffs += [n for n in sorted(set(ma) & set(mb)) if ma[n] != mb[n]]
    ea = {e.name: e for e in a.enum_type}
    eb = {e.name: e for e in b.enum_type}
    diffs += [f"enum {n}" for n in sorted(set(ea) | set(eb)) if ea.get(n) != eb.get(n)]
    return ", ".join(diffs[:20]) or "(options or ordering)"


_STRINGS = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'')
_COMMENTS = re.compile(r"#[^\n]*")
_FIELD = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*[:{<]")
_NET_FIELDS = set(caffe_pb2.NetParameter.DESCRIPTOR.fields_by_name)
_SOLVER_ONLY = set(caffe_pb2.SolverParameter.DESCRIPTOR.fields_by_name) - _NET_FIELDS


def top_level_fields(text: str) -> list[str]:
    """Field names at nesting depth 0 of a prototxt (strings and # comments ignored)."""
    text = _COMMENTS.sub("", _STRINGS.sub('""', text))
    names, depth, pos = [], 0, 0
    for m in re.finditer(r"[{}<>]", text):
        if depth == 0:
            names += _FIELD.findall(text[pos:m.end()])
        depth += 1 if m.group() in "{<" else -1
        pos = m.end()
    if depth == 0:
        names += _FIELD.findall(text[pos:])
    return names


def kind_of(text: str) -> str:
    """'solver' when the file's top level has SolverParameter-only fields (base_lr, net_param,
    max_iter, ...), else 'net'.  caffenet-benchmark's .prototxt files are solvers with the net
    inline, so the file name alone is not enough."""
    return "solver" if any(n in _SOLVER_ONLY for n in top_level_fields(text)) else "net"


def parse_file(path: Path):
    text = path.read_text(encoding="utf-8", errors="replace")
    msg = caffe_pb2.SolverParameter() if kind_of(text) == "solver" else caffe_pb2.NetParameter()
    text_format.Parse(text, msg)
    return msg


def _prototxts(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*")
                  if p.is_file() and p.suffix in (".prototxt", ".solver"))


# ------------------------------------------------------------------------------------------
# the committed module is the compiled proto
# ------------------------------------------------------------------------------------------

def test_committed_module_matches_proto(tmp_path):
    try:
        from grpc_tools import protoc
    except ImportError:
        pytest.skip("grpc_tools is not installed (pip install grpcio-tools): cannot recompile "
                    "proto/caffe.proto to compare it with caffemem/caffe_pb2.py")
    rc = protoc.main(["protoc", f"-I{PROTO.parent}", f"--python_out={tmp_path}", str(PROTO)])
    assert rc == 0, f"protoc failed on {PROTO} (exit {rc})"
    fresh = _serialized_file((tmp_path / "caffe_pb2.py").read_text(encoding="utf-8"))
    committed = _serialized_file(MODULE.read_text(encoding="utf-8"))
    assert Path(caffe_pb2.__file__).resolve() == MODULE.resolve()
    assert fresh == committed, (
        "caffemem/caffe_pb2.py is out of date with proto/caffe.proto (differs in: "
        f"{_describe_difference(fresh, committed)}); regenerate it with: {REGEN}")


def test_proto_header_names_the_command():
    assert REGEN in PROTO.read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------
# files that must parse
# ------------------------------------------------------------------------------------------

SAMPLE_FILES = [pytest.param(p, id=p.name)
                for p in (_prototxts(SAMPLES) if SAMPLES.is_dir() else [])] or [
    pytest.param(None, id="no-samples", marks=pytest.mark.skip(
        reason=f"no *.prototxt under {SAMPLES} yet: nothing to parse"))]


@pytest.mark.parametrize("path", SAMPLE_FILES)
def test_sample_parses(path):
    parse_file(path)


def _shared_params():
    if not SHARED.is_dir():
        return [pytest.param(None, id="shared-absent", marks=pytest.mark.skip(
            reason=f"{SHARED} is absent: ../shared (real-world and oracle prototxts) is not "
                   f"next to this checkout"))]
    params = []
    for p in _prototxts(SHARED):
        rel = str(p.relative_to(SHARED))
        if rel.startswith("robustness/"):  # broken on purpose: tests/test_robustness.py
            continue
        marks = []
        if rel in KNOWN_UNPARSEABLE:
            marks.append(pytest.mark.xfail(reason=KNOWN_UNPARSEABLE[rel],
                                           raises=text_format.ParseError, strict=True))
        params.append(pytest.param(p, id=rel, marks=marks))
    return params


SHARED_FILES = _shared_params()


@pytest.mark.parametrize("path", SHARED_FILES)
def test_shared_file_parses(path):
    parse_file(path)


def test_shared_has_files():
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent: ../shared is not next to this checkout")
    files = _prototxts(SHARED)
    assert files, f"no *.prototxt / *.solver under {SHARED}"
    stale = set(KNOWN_UNPARSEABLE) - {str(p.relative_to(SHARED)) for p in files}
    assert not stale, f"KNOWN_UNPARSEABLE lists files that no longer exist: {sorted(stale)}"


@pytest.mark.parametrize("text,kind", [
    ('net: "train_val.prototxt"\nbase_lr: 0.01\n', "solver"),
    ('test_iter: 10\nnet_param { name: "x" layer { name: "d" type: "Data" } }\n', "solver"),
    ('name: "n"  # base_lr: 1\nlayer { name: "l" type: "Convolution" }\n', "net"),
    ('name: "net: with a colon"\nlayers { name: "c" type: CONVOLUTION }\n', "net"),
    ('input: "data"\ninput_dim: 1\n', "net"),
])
def test_kind_of(text, kind):
    assert kind_of(text) == kind


# Fork and legacy syntax that must read even without ../shared.
SNIPPETS = {
    "v0": 'layers { layer { name: "c" type: "conv" num_output: 8 kernelsize: 3 } '
          'bottom: "data" top: "c" }',
    "v1": 'layers { name: "c" type: CONVOLUTION blobs_lr: 1 convolution_param { num_output: 8 '
          'kernel_size: 3 } bottom: "data" top: "c" }',
    "segnet": 'layer { name: "u" type: "Upsample" upsample_param { scale: 2 upsample_h: 45 '
              'upsample_w: 60 } bn_param { bn_mode: INFERENCE } loss_param { '
              'weight_by_label_freqs: true class_weighting: 0.2 } dropout_param { '
              'sample_weights_test: true } dense_image_data_param { source: "x" batch_size: 1 } }',
    "ssd": 'layer { name: "d" type: "AnnotatedData" transform_param { resize_param { prob: 1 '
           'resize_mode: WARP height: 300 width: 300 interp_mode: LINEAR interp_mode: CUBIC } '
           'distort_param { brightness_prob: 0.5 } expand_param { prob: 0.5 } emit_constraint { '
           'emit_type: CENTER } } annotated_data_param { batch_sampler { max_sample: 1 } } '
           'prior_box_param { min_size: 30 aspect_ratio: 2 } norm_param { across_spatial: false } '
           'permute_param { order: 0 order: 2 } multibox_loss_param { mining_type: MAX_NEGATIVE } '
           'detection_output_param { nms_param { nms_threshold: 0.45 } code_type: CENTER_SIZE } }',
    "frcnn": 'layer { name: "r" type: "ROIPooling" roi_pooling_param { pooled_h: 7 pooled_w: 7 '
             'spatial_scale: 0.0625 } smooth_l1_loss_param { sigma: 3 } python_param { '
             'module: "rpn" layer: "L" param_str: "\'feat_stride\': 16" } '
             'psroi_pooling_param { spatial_scale: 0.0625 output_dim: 21 group_size: 7 } }',
    "deeplab": 'layer { name: "i" type: "Interp" interp_param { zoom_factor: 8 } '
               'image_data_param { label_type: PIXEL ignore_label: 255 } }',
    "caffenet-benchmark": 'layer { name: "d" type: "Data" transform_param { resize_param { '
                          'prob: 1 resize_mode: FIT_SMALL_SIZE pad_mode: MIRRORED '
                          'interp_mode: CUBIC center_object: false max_angle: 0 } } }',
    "nvcaffe": 'default_forward_type: FLOAT16 default_backward_math: FLOAT layer { name: "d" '
               'type: "Data" data_param { threads: 4 } }',
}


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_fork_snippet_parses(name):
    text_format.Parse(SNIPPETS[name], caffe_pb2.NetParameter())


def test_ssd_solver_fields_parse():
    sp = text_format.Parse('eval_type: "detection" ap_version: "11point" '
                           'show_per_class_result: true min_lr: 0.0001 layer_wise_reduce: false '
                           'weights: "a.caffemodel" solver_type: NESTEROV type: "Adam"',
                           caffe_pb2.SolverParameter())
    assert sp.eval_type == "detection" and sp.weights == ["a.caffemodel"]


# ------------------------------------------------------------------------------------------
# field numbers
# ------------------------------------------------------------------------------------------

def _number(message, field):
    return getattr(caffe_pb2, message).DESCRIPTOR.fields_by_name[field].number


@pytest.mark.parametrize("message,field,number", [
    # BVLC
    ("LayerParameter", "convolution_param", 106),
    ("LayerParameter", "include", 8),
    ("LayerParameter", "exclude", 9),
    ("LayerParameter", "transform_param", 100),
    ("LayerParameter", "input_param", 143),
    ("LayerParameter", "embed_param", 137),
    ("LayerParameter", "clip_param", 148),
    ("NetParameter", "layer", 100),
    ("NetParameter", "layers", 2),
    ("SolverParameter", "base_lr", 5),
    ("SolverParameter", "net_param", 25),
    ("SolverParameter", "solver_type", 30),
    ("SolverParameter", "type", 40),
    ("SolverParameter", "weights", 42),
    ("LossParameter", "normalization", 3),
    ("V1LayerParameter", "layer", 1),
    ("V1LayerParameter", "convolution_param", 10),
    ("V1LayerParameter", "param", 1001),
    ("V0LayerParameter", "hdf5_output_param", 1001),
    ("BlobProto", "double_data", 8),
    # forks
    ("LayerParameter", "annotated_data_param", 200),
    ("LayerParameter", "video_data_param", 207),
    ("LayerParameter", "roi_pooling_param", 8266711),
    ("LayerParameter", "smooth_l1_loss_param", 8266712),
    ("LayerParameter", "psroi_pooling_param", 10001),
    ("LayerParameter", "bn_param", 45),
    ("LayerParameter", "dense_image_data_param", 46),
    ("TransformationParameter", "resize_param", 8),
    ("TransformationParameter", "expand_param", 14),
    ("SolverParameter", "eval_type", 241),
    ("NetParameter", "default_forward_type", 11),
])
def test_field_number(message, field, number):
    assert _number(message, field) == number


def test_enum_numbers():
    v1 = caffe_pb2.V1LayerParameter
    assert v1.CONVOLUTION == 4 and v1.DECONVOLUTION == 39 and v1.ABSVAL == 35 and v1.NONE == 0
    assert caffe_pb2.TRAIN == 0 and caffe_pb2.TEST == 1
    assert caffe_pb2.PoolingParameter.STOCHASTIC == 2
    assert caffe_pb2.LossParameter.NONE == 3
    assert caffe_pb2.SolverParameter.ADAM == 5
    assert caffe_pb2.BlobShape.DESCRIPTOR.fields_by_name["dim"].GetOptions().packed


def _all_messages():
    todo = list(caffe_pb2.DESCRIPTOR.message_types_by_name.values())
    while todo:
        msg = todo.pop()
        yield msg
        todo += msg.nested_types


def test_local_numbers_are_the_documented_ones():
    found = {(msg.name, fd.name): fd.number
             for msg in _all_messages() for fd in msg.fields if 1000 <= fd.number < 2000}
    assert found == {**LOCAL_NUMBERS, **REAL_1000S}
    lines = PROTO.read_text(encoding="utf-8").splitlines()
    assert sum("LOCAL number:" in ln for ln in lines) == len(LOCAL_NUMBERS)
    for (msg, field), number in LOCAL_NUMBERS.items():
        at = [i for i, ln in enumerate(lines) if re.search(rf"\b{field} = {number}\b", ln)]
        assert len(at) == 1, f"{msg}.{field} = {number} not found once in {PROTO.name}"
        i = at[0]
        assert "LOCAL number:" in lines[i] or "LOCAL number:" in lines[i - 1], \
            f"{msg}.{field} = {number} lacks its 'LOCAL number' comment in {PROTO.name}"


def test_field_numbers_unique():
    # protoc rejects duplicates; this also guards hand-edits to the generated module.
    for msg in _all_messages():
        numbers = [fd.number for fd in msg.fields]
        assert len(numbers) == len(set(numbers)), msg.full_name
