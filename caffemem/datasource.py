"""Reading a data layer's first record, when the database is at hand.

Caffe's DataLayer shapes its top from the first Datum in the database.  When the LMDB named
by ``data_param.source`` exists and the optional ``lmdb`` package is installed
(``pip install caffemem[lmdb]``), we read that record the same way; otherwise the caller asks
the user for ``--input``.
"""

from __future__ import annotations

import os
from typing import Optional


def first_datum_shape(source: str, backend: int, net_dir: str, transform) -> Optional[tuple[int, int, int]]:
    """(C, H, W) of the first datum, or None when it cannot be read here."""
    if not source or backend != 1:  # 1 = LMDB; LevelDB needs plyvel, not supported
        return None
    path = source if os.path.isabs(source) else next(
        (p for p in (source, os.path.join(net_dir, source)) if os.path.exists(p)), None)
    if path is None or not os.path.exists(path):
        return None
    try:
        import lmdb  # type: ignore
    except ImportError:
        return None
    from .pb import caffe_pb2

    try:
        env = lmdb.open(path, readonly=True, lock=False, subdir=os.path.isdir(path))
        with env.begin() as txn:
            cursor = txn.cursor()
            if not cursor.first():
                return None
            datum = caffe_pb2.Datum()
            datum.ParseFromString(cursor.value())
    except Exception:  # a corrupt or foreign database: fall back to --input
        return None
    if datum.encoded:
        return _encoded_shape(datum, transform)
    return datum.channels, datum.height, datum.width


def _encoded_shape(datum, transform) -> Optional[tuple[int, int, int]]:
    try:
        import io

        from PIL import Image  # pillow comes with matplotlib
    except ImportError:
        return None
    try:
        img = Image.open(io.BytesIO(datum.data))
    except Exception:
        return None
    w, h = img.size
    if transform.force_color:
        c = 3
    elif transform.force_gray:
        c = 1
    else:
        c = 1 if img.mode in ("L", "I", "F", "1") else 3
    return c, h, w
