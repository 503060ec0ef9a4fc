"""What a file given to caffemem really is, before anything tries to parse it.

Both the prototxt loader and the log command call this module first, so that a file that
is not what the command expects is named for what it is, in one line, instead of failing
somewhere in a parser: a missing or unreadable file, a directory (an LMDB or LevelDB
database, a folder of logs), an empty file, and binary files by their look -- an image, a
trained ``.caffemodel`` (whose layer names and parameter shapes are read with the compiled
schema and quoted), a ``.binaryproto`` mean file, HDF5, an archive.

Text is decoded the way people's files come: a UTF-8 byte-order mark is dropped, CRLF and
lone CR line ends become ``\\n``, a UTF-16 file with its BOM is decoded, and Latin-1 bytes
(accented letters in a comment) are accepted; bytes that are neither are named by line.
"""

from __future__ import annotations

import os
import re
from typing import Optional

from .errors import UserError, shown

#: how much of a file the quick checks look at (a log may be gigabytes)
HEAD_BYTES = 1 << 16
#: the largest binary file read whole to say what it holds (a big .caffemodel is ~550 MB)
_PROTO_READ_LIMIT = 1 << 30

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (an HDF5Data layer's source lists such files)"),
    (b"\x1f\x8b", "a gzip-compressed file (decompress it first: gunzip)"),
    (b"PK\x03\x04", "a zip archive (unpack it first)"),
    (b"BZh", "a bzip2-compressed file (decompress it first: bunzip2)"),
    (b"\xfd7zXZ\x00", "an xz-compressed file (decompress it first: unxz)"),
    (b"%PDF", "a PDF document"),
    (b"\x7fELF", "an executable (ELF)"),
    (b"\x93NUMPY", "a NumPy .npy array"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
)
# control bytes that never occur in text (TAB, LF, VT, FF, CR and ESC can)
_BINARY_BYTES = bytes(set(range(32)) - {9, 10, 11, 12, 13, 27})
# a glog prefix (I0101 12:00:00.000000  1234 file.cpp:45]), possibly indented or quoted
_GLOG = re.compile(r"^[\s>]*[IWEF]\d{4} +\d\d:\d\d:\d\d(\.\d+)? +\d+ +[\w.\-]+:\d+\]")
# what Caffe's own lines say, for a log without glog prefixes
_CAFFE_PHRASE = re.compile(r"Iteration \d+|Test net output|Train net output|Memory required for "
                           r"data|Setting up |Creating layer|Top shape:|Initializing net from|"
                           r"Check failed|Solving |Network initialization done")
_LOG_HINT = {"prototxt": "expected a text prototxt (net or solver)", "log": "expected a Caffe log (text)"}


def check_path(path: str, expected: str) -> None:
    """A missing file, a directory or an unreadable file, named with what to do."""
    if not os.path.exists(path):
        near = _near_names(path)
        raise UserError(f"{path}: no such file{near}")
    if os.path.isdir(path):
        raise UserError(f"{path}: {describe_directory(path)}, not a file; {_LOG_HINT[expected]}")
    if not os.access(path, os.R_OK):
        raise UserError(f"{path}: cannot read the file (permission denied)")


def _near_names(path: str) -> str:
    from .errors import did_you_mean

    folder = os.path.dirname(path) or "."
    try:
        names = os.listdir(folder)[:5000]
    except OSError:
        return ""
    hint = did_you_mean(os.path.basename(path), names, cutoff=0.8)
    return hint.replace("; did you mean", " (did you mean").replace("?", "?)") if hint else ""


def describe_directory(path: str) -> str:
    """``'an LMDB database (data.mdb)'``, ``'a LevelDB database'`` or ``'a directory'``."""
    try:
        names = set(os.listdir(path))
    except OSError:
        return "a directory"
    if "data.mdb" in names:
        return "a directory holding an LMDB database (data.mdb: a Data layer's source)"
    if "CURRENT" in names and any(n.startswith("MANIFEST-") for n in names):
        return "a directory holding a LevelDB database (a Data layer's source)"
    return "a directory"


def describe_binary(head: bytes, path: str = "", whole: Optional[bytes] = None) -> Optional[str]:
    """What a binary file looks like, or None when ``head`` looks like text."""
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    if head.startswith(b"BM") and len(head) > 14 and b"\x00" in head[:14]:
        return "a BMP image"
    if len(head) > 24 and head[16:20] in (b"\xde\xc0\xef\xbe", b"\xbe\xef\xc0\xde"):
        return "an LMDB data file (a Data layer's source)"
    if os.path.basename(path) in ("data.mdb", "lock.mdb"):
        return "an LMDB database file (a Data layer's source)"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None  # UTF-16 text with its BOM
    sample = head[:HEAD_BYTES]
    if not sample:
        return None
    control = sum(sample.count(bytes([b])) for b in _BINARY_BYTES)
    # a few stray NULs or control bytes are damaged text (a log cut by a crash); binary data
    # has them everywhere (~10% of random bytes)
    if control * 100 < len(sample) * (3 if b"\x00" in sample else 10):
        return None
    if _GLOG.search(sample.decode("latin-1")) and control * 100 < len(sample) * 30:
        return None  # Caffe's lines, in a badly damaged file: the log reader skips the junk
    data = whole
    if data is None and path:
        try:
            if os.path.getsize(path) <= _PROTO_READ_LIMIT:
                with open(path, "rb") as f:
                    data = f.read()
        except OSError:
            data = None
    what = _describe_protobuf(data if data is not None else head)
    return what or "a binary file"


def _describe_protobuf(data: bytes) -> Optional[str]:
    """A trained ``.caffemodel`` (binary NetParameter) or a ``.binaryproto`` mean file
    (BlobProto), read with the compiled schema; None when ``data`` is neither."""
    from google.protobuf.message import DecodeError

    from .pb import caffe_pb2

    try:
        net = caffe_pb2.NetParameter.FromString(data)
    except (DecodeError, ValueError, RuntimeError):
        net = None
    layers = list(net.layer) + list(net.layers) if net is not None else []
    if layers and all(l.name or l.type for l in layers):
        def dims(b) -> str:
            d = list(b.shape.dim) if b.HasField("shape") else \
                [x for x in (b.num, b.channels, b.height, b.width) if x]
            return "x".join(map(str, d)) or "?"
        weighted = [l for l in layers if len(l.blobs)]
        shown_layers = ", ".join(
            f"{l.name} {'+'.join(dims(b) for b in l.blobs)}" for l in weighted[:4])
        more = f", ... ({len(weighted)} with weights)" if len(weighted) > 4 else ""
        name = f" '{net.name}'" if net.name else ""
        return (f"a trained .caffemodel weights file (binary NetParameter{name}, "
                f"{len(layers)} layer{'s' if len(layers) > 1 else ''}; weights: "
                f"{shown_layers or 'none'}{more})")
    try:
        blob = caffe_pb2.BlobProto.FromString(data)
    except (DecodeError, ValueError, RuntimeError):
        return None
    n = len(blob.data) + len(blob.double_data) + len(blob.raw_data)
    if n:
        d = list(blob.shape.dim) if blob.HasField("shape") else \
            [x for x in (blob.num, blob.channels, blob.height, blob.width) if x]
        return (f"a .binaryproto blob (a mean file: {'x'.join(map(str, d)) or n} values; "
                f"a transform_param's mean_file)")
    return None


def decode(raw: bytes, path: str) -> str:
    """Text from ``raw``: BOMs dropped, UTF-16 decoded by its BOM, UTF-8 else Latin-1 for
    accented letters, line ends made ``\\n``; undecodable bytes named by line."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = raw.decode("utf-16")
        except UnicodeDecodeError as e:
            line = raw[:e.start].count(b"\n\x00") + raw[:e.start].count(b"\x00\n") + 1
            raise UserError(f"{path}:{line}: not valid UTF-16 text after its byte-order mark "
                            f"(byte {e.start:,}); save the file as UTF-8") from None
    else:
        text = raw.decode("utf-8", errors="surrogateescape")
        if _STRAY.search(text):
            text = _STRAY.sub(lambda m: _from_cp1252(m.group(0), text, m.start(), path), text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.lstrip("\ufeff")


# bytes that are not UTF-8, as decode(errors="surrogateescape") leaves them
_STRAY = re.compile("[\udc80-\udcff]")


def _from_cp1252(char: str, text: str, pos: int, path: str) -> str:
    """One byte that is not UTF-8, read as Windows-1252/Latin-1 (an accented letter or a
    smart quote from an old editor); a byte that is not a character there either is named."""
    byte = bytes([ord(char) - 0xDC00])
    try:
        return byte.decode("cp1252")
    except UnicodeDecodeError:
        line = text.count("\n", 0, pos) + 1
        start = text.rfind("\n", 0, pos) + 1
        end = text.find("\n", pos)
        snippet = text[start:end if end >= 0 else len(text)][:40].encode("utf-8", "surrogateescape").decode("latin-1")
        raise UserError(f"{path}:{line}: byte {byte!r} is neither UTF-8 nor Latin-1 text "
                        f"(line starts {shown(snippet, 40)}); is this the right file? save it "
                        f"as UTF-8") from None


def read_text(path: str, expected: str = "prototxt") -> str:
    """A text file's content, after the checks above; every refusal names ``path``."""
    check_path(path, expected)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory; {_LOG_HINT[expected]}") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror}") from None
    if not raw.strip():
        raise UserError(f"{path}: empty file{' (only whitespace)' if raw else ''}; "
                        f"{_LOG_HINT[expected]}")
    what = describe_binary(raw[:HEAD_BYTES], path, raw)
    if what:
        raise UserError(f"{path}: {_binary_words(what)}; {_LOG_HINT[expected]}")
    text = decode(raw, path)
    if expected == "prototxt":
        first = next((l for l in text.splitlines() if l.strip()), "")
        if _GLOG.match(first):  # a log handed to analyze: say so, not 'Expected "{"'
            raise UserError(f"{path}:1: a Caffe log (glog lines), not a net or solver prototxt; "
                            f"'caffemem log {path}' reads it")
    return text


def check_log(path: str) -> None:
    """The quick checks for a log (only its head is read: logs can be gigabytes)."""
    check_path(path, "log")
    try:
        with open(path, "rb") as f:
            head = f.read(HEAD_BYTES)
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror}") from None
    if not head.strip():
        raise UserError(f"{path}: empty file; expected a Caffe log (run with 2>&1 | tee train.log "
                        f"to save one)")
    what = describe_binary(head, path)
    if what:
        raise UserError(f"{path}: {_binary_words(what)}; {_LOG_HINT['log']}")


def _binary_words(what: str) -> str:
    return "binary data, not text" if what == "a binary file" else f"binary file: {what}"


def check_caffe_log(summary) -> None:
    """A log in which nothing Caffe writes was recognised (no net, solver, iteration, test
    pass, GPU line or failure) is not reported on: named, with what it looks like instead."""
    s = summary
    seen = (s.solver_echo or s.nets or len(s.train) or len(s.test) or s.failures or s.foreign
            or s.gpus or s.snapshots or s.weights is not None or s.last_iteration is not None
            or s.solving or s.frames or s.gpu_total_bytes)
    if seen:
        return
    try:
        with open(s.path, "rb") as f:
            raw = f.read(HEAD_BYTES)
        head = decode(raw[:len(raw) - len(raw) % 2] if raw.startswith((b"\xff\xfe", b"\xfe\xff"))
                      else raw, s.path)
    except (OSError, UserError):
        raw, head = b"", ""
    caffe_lines = [l for l in head.splitlines() if _GLOG.match(l) or _CAFFE_PHRASE.search(l)]
    if caffe_lines and raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UserError(f"{s.path}: a Caffe log saved as UTF-16 (as PowerShell's '>' writes it), "
                        f"which caffemem cannot read yet; convert it: iconv -f UTF-16 -t UTF-8 "
                        f"{s.path} > train.log")
    if caffe_lines and all(l[:1] in " \t" for l in caffe_lines):
        raise UserError(f"{s.path}: every Caffe line is indented (a log pasted as a code block?), "
                        f"which caffemem cannot read yet; remove the indentation: "
                        f"sed -E 's/^[ \\t]+//' {s.path} > train.log")
    if caffe_lines:
        return  # Caffe's output, damaged beyond reading: the report says what was skipped
    head = re.sub(r"(?m)^[ \t]*#.*\n?", "", head).lstrip()
    if re.match(r"(name\s*:|layers?\s*\{|input\s*:)", head):
        looks = "it looks like a net prototxt: give it to 'caffemem analyze'"
    elif re.match(r"(net|train_net|base_lr|test_iter)\s*:", head):
        looks = "it looks like a solver prototxt: give it to 'caffemem analyze'"
    elif head.startswith(("{", "[")):
        looks = "it looks like JSON"
    else:
        looks = "no glog line (I0101 12:00:00.000000 123 file.cpp:45] ...) from Caffe, no solver or net output recognised"
    lines = s.stop.lines
    raise UserError(f"{s.path}: not a Caffe log ({lines:,} line{'s' if lines != 1 else ''} read; "
                    f"{looks}); give the output of caffe train (saved with 2>&1 | tee train.log)")
