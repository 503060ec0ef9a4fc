"""Bad invocations and bad inputs: each gives its exit status and exactly one line on stderr,
``caffemem: error: ...``, naming the file (line:col) or the option, with no traceback.

The table covers every kind of bad input of issue 17: sizes, option ranges, usage mistakes
(exit 1, not argparse's 2), missing/unreadable/empty/binary files and directories, text
that does not decode or parse, typos (did-you-mean), nets that cannot be built, solvers that
point nowhere, conflicting options, and files that are not logs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from caffemem.cli import main
from caffemem.pb import caffe_pb2

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
NET = str(SAMPLES / "small_cnn_train.prototxt")
INPUT = 'layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } } }\n'
GLOG = "I0303 20:08:32.148350 42944 solver.cpp:218] Iteration 10 (1 iter/s, 0.1s/10 iters), loss = 0.5\n"


def _caffemodel() -> bytes:
    net = caffe_pb2.NetParameter(name="LeNet")
    for name, shapes in (("conv1", [(20, 1, 5, 5), (20,)]), ("ip1", [(10, 80), (10,)])):
        layer = net.layer.add(name=name, type="Convolution")
        for shape in shapes:
            blob = layer.blobs.add()
            blob.shape.dim.extend(shape)
            blob.data.extend([0.25] * 20)
    return net.SerializeToString()


def _mean_file() -> bytes:
    blob = caffe_pb2.BlobProto(num=1, channels=3, height=4, width=4)
    blob.data.extend([104.0] * 48)
    return blob.SerializeToString()


def _lmdb(d: Path) -> Path:
    db = d / "train_lmdb"
    db.mkdir()
    (db / "data.mdb").write_bytes(b"\x00" * 16 + b"\xde\xc0\xef\xbe" + b"\x00" * 100)
    (db / "lock.mdb").write_bytes(b"\x00" * 64)
    return db


# (id, files to write {name: text|bytes|callable(dir)}, argv with {d} for the folder,
#  exit status, what the message must contain: the file or option, and the advice)
CASES: list[tuple] = [
    # sizes: one parser, binary units, one line (never argparse's traceback)
    ("gpu-mem junk", {}, ["analyze", NET, "--gpu-mem", "abc"], 1, ["--gpu-mem", "'abc'", "8G"]),
    ("gpu-mem bare small number", {}, ["analyze", NET, "--gpu-mem", "8"], 1,
     ["--gpu-mem", "`8` is 8 bytes; did you mean 8G?"]),
    ("gpu-mem zero", {}, ["analyze", NET, "--gpu-mem", "0"], 1, ["--gpu-mem", "more than 0"]),
    ("gpu-mem negative", {}, ["analyze", NET, "--gpu-mem=-8G"], 1, ["--gpu-mem", "negative"]),
    ("gpu-mem nan", {}, ["analyze", NET, "--gpu-mem", "nan"], 1, ["--gpu-mem", "not a number"]),
    ("gpu-mem inf", {}, ["fit", NET, "--gpu-mem", "inf"], 1, ["--gpu-mem", "not a number"]),
    ("gpu-mem overflow", {}, ["analyze", NET, "--gpu-mem", "1e400"], 1, ["--gpu-mem", "out of range"]),
    ("gpu-mem empty", {}, ["analyze", NET, "--gpu-mem", ""], 1, ["--gpu-mem", "empty"]),
    ("gpu-mem huge", {}, ["diff", NET, NET, "--gpu-mem", "99999999999999999999999PiB"], 1,
     ["--gpu-mem", "8 EiB"]),
    ("gpu-mem escape echoed", {}, ["analyze", NET, "--gpu-mem", "\x1b[2J8G"], 1,
     ["--gpu-mem", "'\\x1b[2J8G'"]),
    # option ranges checked as Caffe checks them
    ("level beyond int32", {}, ["analyze", NET, "--level", "99999999999999999999"], 1,
     ["--level", "32-bit" if False else "2,147,483,647"]),
    ("level below int32", {}, ["plot", NET, "-o", "{d}/x.png", "--level", "-9223372036854775809"], 1,
     ["--level"]),
    ("workspace nan", {}, ["analyze", NET, "--cudnn-workspace-mib", "nan"], 1,
     ["--cudnn-workspace-mib", "between 0 and 8"]),
    ("workspace over limit", {}, ["analyze", NET, "--cudnn-workspace-mib", "9"], 1,
     ["--cudnn-workspace-mib"]),
    ("context negative", {}, ["analyze", NET, "--context-mib", "-1000"], 1, ["--context-mib", "between 0"]),
    ("gpus zero", {}, ["analyze", NET, "--gpus", "0"], 1, ["--gpus", "at least 1"]),
    ("batch zero", {}, ["analyze", NET, "--batch", "0"], 1, ["--batch"]),
    ("batch junk", {}, ["fit", NET, "--gpu-mem", "8G", "--batch", "x"], 1, ["--batch", "whole number"]),
    # usage mistakes: exit 1 and one line (argparse would exit 2, the code of a bug)
    ("unknown option", {}, ["analyze", NET, "--frobnicate"], 1, ["--frobnicate", "analyze --help"]),
    ("option typo", {}, ["analyze", NET, "--gpu_mem", "8G"], 1, ["--gpu_mem", "did you mean '--gpu-mem'"]),
    ("command typo", {}, ["analyse", NET], 1, ["'analyse'", "did you mean 'analyze'"]),
    ("phase typo", {}, ["analyze", NET, "--phase", "TRIAN"], 1, ["--phase", "did you mean 'TRAIN'"]),
    ("missing argument", {}, ["analyze"], 1, ["prototxt", "required"]),
    ("no command", {}, [], 1, ["no command"]),
    ("fit without capacity", {}, ["fit", NET], 1, ["--gpu-mem"]),
    ("plot of three nets", {}, ["plot", NET, NET, NET, "-o", "{d}/x.png", "--what", "layers"], 1,
     ["one net"]),
    ("output not writable", {}, ["analyze", NET, "-o", "{d}/no/such/dir/out.txt"], 1,
     ["{d}/no/such/dir/out.txt"]),
    # files: missing, directories, unreadable, empty, binary by their look
    ("missing file", {}, ["analyze", "{d}/nope.prototxt"], 1, ["{d}/nope.prototxt", "no such file"]),
    ("missing file, close name", {"train_val.prototxt": INPUT}, ["analyze", "{d}/train_va.prototxt"], 1,
     ["no such file", "did you mean 'train_val.prototxt'"]),
    ("directory as file", {}, ["analyze", "{d}"], 1, ["{d}", "directory"]),
    ("LMDB directory", {"lmdb": _lmdb}, ["analyze", "{d}/train_lmdb"], 1, ["train_lmdb", "LMDB"]),
    ("LMDB data file", {"lmdb": _lmdb}, ["analyze", "{d}/train_lmdb/data.mdb"], 1, ["data.mdb", "LMDB"]),
    ("unreadable file", {}, ["analyze", "{unreadable}"], 1, ["{unreadable}", "cannot read"]),
    ("empty file", {"e.prototxt": ""}, ["analyze", "{d}/e.prototxt"], 1, ["e.prototxt", "empty file"]),
    ("whitespace only", {"w.prototxt": " \n\t\n"}, ["fit", "{d}/w.prototxt", "--gpu-mem", "8G"], 1,
     ["w.prototxt", "empty file"]),
    ("comments only", {"c.prototxt": "# nothing\n"}, ["analyze", "{d}/c.prototxt"], 1,
     ["c.prototxt", "no layers (only comments)"]),
    ("PNG image", {"img.prototxt": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"}, ["analyze", "{d}/img.prototxt"], 1,
     ["img.prototxt", "PNG image"]),
    ("JPEG image", {"p.jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"}, ["diff", NET, "{d}/p.jpg"], 1,
     ["p.jpg", "JPEG image"]),
    ("caffemodel", {"w.caffemodel": _caffemodel()}, ["analyze", "{d}/w.caffemodel"], 1,
     ["w.caffemodel", ".caffemodel weights", "'LeNet'", "conv1 20x1x5x5+20"]),
    ("mean file", {"mean.binaryproto": _mean_file()}, ["analyze", "{d}/mean.binaryproto"], 1,
     ["mean.binaryproto", "mean file", "1x3x4x4"]),
    ("HDF5", {"d.h5": b"\x89HDF\r\n\x1a\n" + b"\x00" * 64}, ["analyze", "{d}/d.h5"], 1, ["d.h5", "HDF5"]),
    ("gzip", {"n.prototxt.gz": b"\x1f\x8b\x08\x00" + b"\x00" * 40}, ["analyze", "{d}/n.prototxt.gz"], 1,
     ["n.prototxt.gz", "gunzip"]),
    # text that does not decode or parse: file:line(:col), escaped
    ("undecodable bytes", {"u.prototxt": b'name: "a"\nlayer { name: "\x81" }\n'}, ["analyze", "{d}/u.prototxt"],
     1, ["u.prototxt:2:", "\\x81"]),
    ("ANSI escape in a parse error", {"x.prototxt": 'layer { \x1b[2J\x1b[31mpwned\x1b[0m }\n'},
     ["analyze", "{d}/x.prototxt"], 1, ["x.prototxt:1:9:", "\\x1b[2J"]),
    ("CRLF parse error", {"crlf.prototxt": b'layer {\r\n  name: "a"\r\n  type: "ReLU" }}\r\n'},
     ["analyze", "{d}/crlf.prototxt"], 1, ["crlf.prototxt:3:"]),
    ("enum typo", {"e.prototxt": INPUT + 'layer { name: "p" type: "Pooling" bottom: "x" top: "p" '
                   'pooling_param { pool: MAXX kernel_size: 2 } }\n'}, ["analyze", "{d}/e.prototxt"], 1,
     ["e.prototxt:2:", "did you mean MAX"]),
    # typos and forks
    ("layer type typo", {"t.prototxt": INPUT + 'layer { name: "c" type: "Convolutoin" bottom: "x" top: "c" }\n'},
     ["analyze", "{d}/t.prototxt"], 1, ["'c'", "did you mean 'Convolution'"]),
    ("unknown type, other arity", {"f.prototxt": INPUT + 'layer { name: "p" type: "Proposal2" bottom: "x" '
                                   'top: "rois" top: "scores" }\n'}, ["analyze", "{d}/f.prototxt"], 1,
     ["'p'", "--input rois=N,C,H,W --input scores=N,C,H,W"]),
    ("field typo breaks the net", {"ft.prototxt": 'layer {\n  name: "a"\n  tpye: "ReLU"\n}\n'},
     ["analyze", "{d}/ft.prototxt"], 1, ["'a' has no type", "tpye (line 3; did you mean type?)"]),
    ("input blob typo", {}, ["analyze", NET, "--input", "dta=1,3,32,32"], 1,
     ["--input", "'dta'", "did you mean 'data'"]),
    ("bottom typo", {"b.prototxt": INPUT.replace('"x"', '"conv1"') + 'layer { name: "r" type: "ReLU" '
                     'bottom: "cnv1" top: "r" }\n'}, ["analyze", "{d}/b.prototxt"], 1,
     ["layer 'r'", "bottom 'cnv1'", "did you mean 'conv1'"]),
    ("bottom of a filtered layer", {"s.prototxt": INPUT.replace("} } }", "} } include { stage: \"train\" } }")
                                    + 'layer { name: "r" type: "ReLU" bottom: "x" top: "r" }\n'},
     ["analyze", "{d}/s.prototxt"], 1, ["layer 'r'", "bottom 'x'", "e.g. --stage train"]),
    ("input syntax", {}, ["analyze", NET, "--input", "data=a,b"], 1, ["--input 'data=a,b'"]),
    ("stage typo", {"s.prototxt": 'layer { name: "d" type: "Input" top: "x" include { stage: "deploy" } '
                    'input_param { shape { dim: 1 } } }\n'}, ["analyze", "{d}/s.prototxt", "--stage", "deplyo"],
     1, ["--stage 'deplyo'", "did you mean 'deploy'"]),
    # nets that cannot be built, as Caffe refuses them
    ("negative dimension", {"n.prototxt": 'layer { name: "d" type: "Input" top: "d" input_param { shape { '
                            'dim: -1 dim: 3 } } }\n'}, ["analyze", "{d}/n.prototxt", "--format", "json"], 1,
     ["layer 'd'", "negative dimension (-1)", "shape[i] >= 0"]),
    ("top produced twice", {"t2.prototxt": 'layer { name: "d" type: "Input" top: "x" top: "x" '
                            'input_param { shape { dim: 1 } shape { dim: 1 } } }\n'},
     ["analyze", "{d}/t2.prototxt"], 1, ["layer 'd'", "'x' produced by multiple sources (twice by layer 'd')"]),
    ("every layer filtered out", {"f.prototxt": 'layer { name: "d" type: "Input" top: "d" include { stage: '
                                  '"deploy" } input_param { shape { dim: 1 } } }\n'}, ["analyze", "{d}/f.prototxt"],
     1, ["f.prototxt", 'stage: "deploy"', "try --stage deploy"]),
    ("plot of a refused net holding nothing", {"t.prototxt": INPUT + 'layer { name: "c" type: "Convolutoin" '
                                               'bottom: "x" top: "c" }\n'},
     ["plot", "{d}/t.prototxt", "-o", "{d}/t.png", "--context-mib", "0"], 1, ["did you mean 'Convolution'"]),
    ("pooling stride zero", {"p.prototxt": INPUT + 'layer { name: "p" type: "Pooling" bottom: "x" top: "p" '
                             'pooling_param { kernel_size: 2 stride: 0 } }\n'}, ["analyze", "{d}/p.prototxt"], 1,
     ["layer 'p' (Pooling): stride 0", "stride >= 1"]),
    # solvers that point nowhere
    ("solver to a missing net", {"solver.prototxt": 'net: "nope.prototxt"\nbase_lr: 0.01\n'},
     ["analyze", "{d}/solver.prototxt"], 1, ["solver.prototxt", "'nope.prototxt' not found"]),
    ("solver to itself", {"solver.prototxt": 'net: "solver.prototxt"\nbase_lr: 0.01\n'},
     ["analyze", "{d}/solver.prototxt"], 1, ["solver.prototxt", "names itself"]),
    ("solver to an empty net", {"solver.prototxt": 'net: "e.prototxt"\nbase_lr: 0.01\n', "e.prototxt": ""},
     ["analyze", "{d}/solver.prototxt"], 1, ["e.prototxt", "empty file"]),
    ("solver with two train nets", {"solver.prototxt": f'net: "{NET}"\ntrain_net: "{NET}"\nbase_lr: 0.1\n'},
     ["fit", "{d}/solver.prototxt", "--gpu-mem", "8G"], 1, ["solver.prototxt", "more than one train net"]),
    # logs
    ("empty log", {"e.log": ""}, ["log", "{d}/e.log", "--format", "csv"], 1, ["e.log", "empty file"]),
    ("image as log", {"i.log": b"\x89PNG\r\n\x1a\n\x00\x00"}, ["log", "{d}/i.log", "--format", "json"], 1,
     ["i.log", "PNG image"]),
    ("weights as log", {"w.caffemodel": _caffemodel()}, ["log", "{d}/w.caffemodel"], 1,
     ["w.caffemodel", ".caffemodel"]),
    ("text that is not a log", {"t.log": "hello world\n"}, ["log", "{d}/t.log"], 1, ["t.log", "not a Caffe log"]),
    ("prototxt as log", {}, ["log", NET], 1, ["small_cnn_train.prototxt", "not a Caffe log", "net prototxt"]),
    ("missing log", {}, ["log", "{d}/train.log"], 1, ["{d}/train.log", "no such file"]),
    ("directory as log", {}, ["log", "{d}"], 1, ["{d}", "directory"]),
    ("log with a missing --net", {"ok.log": GLOG}, ["log", "{d}/ok.log", "--net", "{d}/net.prototxt"], 1,
     ["{d}/net.prototxt", "no such file"]),
    ("curves plot of junk", {"t.log": "I0303 nothing\n"}, ["plot", "{d}/t.log", "-o", "{d}/c.png", "--what", "curves"],
     1, ["t.log", "not a Caffe log"]),
]


def _unreadable(d: Path) -> str:
    """A file that exists but cannot be read: mode 000 (or, as root, a file whose read fails)."""
    if os.geteuid() != 0:
        f = d / "locked.prototxt"
        f.write_text(INPUT)
        f.chmod(0)
        return str(f)
    return "/proc/self/mem"


def _setup(d: Path, files: dict) -> None:
    for name, content in files.items():
        if callable(content):
            content(d)
        elif isinstance(content, bytes):
            (d / name).write_bytes(content)
        else:
            (d / name).write_text(content)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line_naming_it(case, tmp_path, capsys):
    _name, files, argv, status, says = case
    _setup(tmp_path, files)
    subs = {"{d}": str(tmp_path), "{unreadable}": _unreadable(tmp_path) if "{unreadable}" in argv else ""}

    def fill(s: str) -> str:
        for k, v in subs.items():
            s = s.replace(k, v)
        return s
    code = main([fill(a) for a in argv])
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert code == status, err
    assert len(lines) == 1, err
    assert lines[0].startswith("caffemem: error: "), err
    assert "Traceback" not in err and "\r" not in err and "\x1b" not in err
    for s in says:
        assert fill(s) in lines[0], lines[0]


def test_table_covers_the_issue():
    assert len(CASES) >= 30


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("CAFFEMEM_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "caffemem", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


@pytest.mark.parametrize("args", [
    ["analyze", "samples/small_cnn_train.prototxt", "--gpu-mem", "abc"],
    ["analyze", "samples/small_cnn_train.prototxt", "--frobnicate"],
    ["analyze", "{empty}"],
    ["log", "{empty}"],
])
def test_as_a_user_runs_it_one_line_exit_1(args, tmp_path):
    (tmp_path / "empty.prototxt").write_text("")
    p = _cli(*[a.replace("{empty}", str(tmp_path / "empty.prototxt")) for a in args])
    assert p.returncode == 1 and len(p.stderr.splitlines()) == 1 and "Traceback" not in p.stderr, p.stderr
    assert p.stdout == "" or args[0] != "log"


def test_binary_gpu_units_accepted_and_echoed(tmp_path):
    for spelling in ("8Gi", "8GiB", "8GB", "8G", "8192M"):
        p = _cli("fit", "samples/small_cnn_train.prototxt", "--gpu-mem", spelling)
        assert p.returncode == 0 and p.stderr == "", p.stderr
        assert "8,589,934,592 B" in p.stdout


def test_utf8_bom_crlf_and_latin1_just_work(tmp_path):
    text = (SAMPLES / "small_cnn_train.prototxt").read_bytes()
    f = tmp_path / "bom.prototxt"
    f.write_bytes(b"\xef\xbb\xbf# caf\xe9 net\r\n" + text.replace(b"\n", b"\r\n"))
    p = _cli("analyze", str(f), "--format", "json")
    q = _cli("analyze", NET, "--format", "json")
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert p.stdout.replace(str(f), "X") == q.stdout.replace(NET, "X")


def test_internal_error_is_one_line_asking_for_a_report_traceback_with_debug(monkeypatch, capsys):
    import caffemem.commands.layers as layers_cmd

    def broken(args):
        raise ZeroDivisionError("boom\nsecond line")
    monkeypatch.setattr(layers_cmd, "run", broken)
    assert main(["layers"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "bug in caffemem" in err and "report" in err
    assert "--debug" in err
    with pytest.raises(ZeroDivisionError):
        main(["layers", "--debug"])
    monkeypatch.setenv("CAFFEMEM_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        main(["layers"])


def test_exit_codes_documented_in_help_and_readme(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for code in ("0 done", "1 the input", "2 a bug", "3 the net does not fit"):
        assert code in " ".join(out.split()), code
    assert "8G = 8GB = 8GiB = 8Gi" in " ".join(out.split())
    readme = (ROOT / "README.md").read_text()
    assert "## Exit status" in readme and "8G = 8GB = 8GiB = 8Gi" in readme
