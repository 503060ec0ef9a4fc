"""The fast text-format path gives exactly protobuf's message, or hands over to protobuf."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from caffemem.pb import caffe_pb2, text_format
from caffemem.prototxt import looks_like_solver
from caffemem.textproto import fast_parse

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def _files() -> list[Path]:
    files = sorted((ROOT / "samples").glob("*.prototxt"))
    if SHARED.is_dir():
        files += sorted(SHARED.rglob("*.prototxt"))
    return files


def _both(text: str):
    cls = caffe_pb2.SolverParameter if looks_like_solver(text) else caffe_pb2.NetParameter
    slow = cls()
    try:
        text_format.Parse(text, slow)
    except text_format.ParseError:
        slow = None
    fast = cls()
    return slow, fast, fast_parse(text, fast)


def test_same_message_as_protobuf_on_every_prototxt_we_have():
    files = _files()
    assert len(files) >= 5
    fast_count = 0
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        slow, fast, ok = _both(text)
        if ok:
            fast_count += 1
            assert slow is not None, f"{path}: the fast path accepted what protobuf refuses"
            assert fast.SerializeToString() == slow.SerializeToString(), path
        else:
            assert not fast.ListFields(), f"{path}: a refused fast parse must leave the message empty"
    assert fast_count >= len(files) * 0.8  # the fast path is the common one


@pytest.mark.parametrize("text", [
    'layer { name: "a\\"b" }',                     # escapes: protobuf's
    'layer < name: "a" >',                         # angle brackets
    'layer { bottom: ["a", "b"] }',                # list syntax
    'name: "a" "b"',                               # adjacent strings concatenated
    'name: "a" name: "b"',                         # a singular field twice: protobuf's error
    'layer { unknown_field: 3 }',                  # unknown: skipped with a warning elsewhere
    'layer { name: "a" ',                          # unclosed
    'layer { convolution_param { num_output: -1 } }',  # uint32 out of range
    'layer { convolution_param { num_output: 99999999999 } }',
    'state { phase: TRAN }',                       # bad enum
])
def test_anything_unusual_goes_to_protobuf(text):
    slow, fast, ok = _both(text)
    assert not ok and not fast.ListFields()


def test_values_converted_like_protobuf():
    text = ('name: "n" force_backward: true layer { name: "x" type: "Input" top: "x" '
            'phase: TEST loss_weight: 1e-3 loss_weight: .5 loss_weight: 2.0f loss_weight: inf '
            'input_param { shape { dim: 0x10 dim: -3 dim: 9223372036854775807 } } '
            'propagate_down: t propagate_down: False; include { phase: 1 } }')
    slow, fast, ok = _both(text)
    assert ok and fast.SerializeToString() == slow.SerializeToString()


def test_random_token_soup_never_disagrees_with_protobuf():
    rng = random.Random(17)
    words = ['layer', '{', '}', 'name', ':', '"x"', 'type', '"ReLU"', 'bottom', 'top', 'dim',
             'input_param', 'shape', '1', '-1', '0x7', 'phase', 'TEST', 'include', ',', ';', '#c\n']
    for _ in range(2000):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 30)))
        slow, fast, ok = _both(text)
        if ok:
            assert slow is not None and fast.SerializeToString() == slow.SerializeToString(), text
