"""A Data layer whose LMDB is at hand is shaped from its first record, as Caffe does."""

from __future__ import annotations

import io

import pytest

from caffemem.analysis import build_all
from caffemem.pb import caffe_pb2

lmdb = pytest.importorskip("lmdb", reason="the optional lmdb reader (pip install caffemem[lmdb]) is not installed")

NET = '''layer {{ name: "d" type: "Data" top: "data" top: "label"
  transform_param {{ {transform} }}
  data_param {{ source: "{db}" backend: LMDB batch_size: 6 }} }}
'''


def write_db(path, datum):
    env = lmdb.open(str(path), map_size=1 << 24)
    with env.begin(write=True) as txn:
        txn.put(b"00000000", datum.SerializeToString())
    env.close()


def test_raw_datum_gives_channels_height_width(tmp_path):
    datum = caffe_pb2.Datum(channels=3, height=20, width=30, data=bytes(3 * 20 * 30), label=1)
    write_db(tmp_path / "db", datum)
    net_file = tmp_path / "n.prototxt"
    net_file.write_text(NET.format(transform="", db="db"))  # relative to the net's folder
    net = build_all(str(net_file))[0]
    assert net.blob("data").shape == (6, 3, 20, 30) and net.blob("label").shape == (6,)
    net_file.write_text(NET.format(transform="crop_size: 16", db="db"))
    assert build_all(str(net_file))[0].blob("data").shape == (6, 3, 16, 16)


def test_encoded_datum_is_decoded_for_its_size(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    buf = io.BytesIO()
    Image.new("RGB", (40, 24)).save(buf, format="PNG")
    write_db(tmp_path / "db", caffe_pb2.Datum(encoded=True, data=buf.getvalue()))
    net_file = tmp_path / "n.prototxt"
    net_file.write_text(NET.format(transform="force_gray: true", db=str(tmp_path / "db")))
    assert build_all(str(net_file))[0].blob("data").shape == (6, 1, 24, 40)
