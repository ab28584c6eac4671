"""Hostile PDFs made on the fly (nothing binary committed)."""

from __future__ import annotations

import zlib
from pathlib import Path


def make_bomb(path: Path, size: int) -> Path:
    """A one-page form whose field /V is a string of ``size`` bytes in a compressed
    object stream (a few hundred kB on disk)."""
    comp = zlib.compressobj(9)
    header = b"6 0 "
    body = [comp.compress(header), comp.compress(b"(")]
    chunk = b"A" * (1 << 20)
    left = size
    while left > 0:
        n = min(left, len(chunk))
        body.append(comp.compress(chunk[:n]))
        left -= n
    body.append(comp.compress(b")"))
    body.append(comp.flush())
    objstm = b"".join(body)
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    def obj(num: int, content: bytes) -> None:
        offsets[num] = len(out)
        out.extend(b"%d 0 obj\n" % num + content + b"\nendobj\n")
    obj(1, b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [5 0 R] >> >>")
    obj(2, b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>")
    obj(3, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Annots [5 0 R] >>")
    obj(4, b"<< /Type /ObjStm /N 1 /First %d /Filter /FlateDecode /Length %d >>\nstream\n"
        % (len(header), len(objstm)) + objstm + b"\nendstream")
    obj(5, b"<< /FT /Tx /T (bombe) /V 6 0 R /Type /Annot /Subtype /Widget "
           b"/Rect [0 0 10 10] /P 3 0 R >>")
    xref_at = len(out)
    rows = [b"\x00" + (0).to_bytes(4, "big") + (65535).to_bytes(2, "big")]
    for n in (1, 2, 3, 4, 5):
        rows.append(b"\x01" + offsets[n].to_bytes(4, "big") + (0).to_bytes(2, "big"))
    rows.append(b"\x02" + (4).to_bytes(4, "big") + (0).to_bytes(2, "big"))  # 6 in objstm 4
    rows.append(b"\x01" + xref_at.to_bytes(4, "big") + (0).to_bytes(2, "big"))  # 7: xref
    data = b"".join(rows)
    out.extend(b"7 0 obj\n<< /Type /XRef /Size 8 /W [1 4 2] /Root 1 0 R /Length %d >>\n"
               b"stream\n" % len(data) + data + b"\nendstream\nendobj\n")
    out.extend(b"startxref\n%d\n%%%%EOF\n" % xref_at)
    path.write_bytes(bytes(out))
    return path
