"""Text encoding of a drive log: UTF-8 or CP949 (the Korean superset of EUC-KR), detected automatically.

Korean DTG exports are usually CP949. UTF-8 is strict (invalid byte sequences are common in CP949
Hangul), so a file that decodes as UTF-8 is UTF-8; otherwise it must decode as CP949.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from dtg.errors import DtgError

ENCODINGS = ("auto", "utf-8", "cp949")
_ALIASES = {"utf8": "utf-8", "utf-8": "utf-8", "utf-8-sig": "utf-8", "cp949": "cp949", "euc-kr": "cp949",
            "euckr": "cp949", "uhc": "cp949", "ms949": "cp949"}


def normalise(encoding: str) -> str:
    """Canonical name of a supported encoding ('auto', 'utf-8' or 'cp949'); DtgError otherwise."""
    key = encoding.strip().lower().replace("_", "-")
    if key == "auto":
        return "auto"
    if key not in _ALIASES:
        raise DtgError(f"unsupported encoding '{encoding}' (choose from {', '.join(ENCODINGS)}, euc-kr)",
                       field="encoding")
    return _ALIASES[key]


def looks_binary(data: bytes) -> bool:
    """True if the start of `data` has NUL bytes: no text log has them."""
    return b"\x00" in data[:65536]


def text_bytes(data: bytes, name: str, kind: str) -> bytes:
    """The bytes of a text log without its BOM; DtgError if it is empty or binary (not a `kind`)."""
    if not data:
        raise DtgError("empty file", file=name)
    if looks_binary(data):
        raise DtgError(f"binary file, not a {kind}", file=name)
    return strip_bom(data)


def strip_bom(data: bytes) -> bytes:
    return data[3:] if data.startswith(codecs.BOM_UTF8) else data


def detect(data: bytes, path: str | Path = "") -> str:
    """'utf-8' if `data` is valid UTF-8 (pure ASCII included), else 'cp949' if valid CP949; else DtgError."""
    data = strip_bom(data)
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        data.decode("cp949")
        return "cp949"
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DtgError("not text in UTF-8 or CP949 (binary or unknown encoding)", file=path, line=line) from None


def decode(data: bytes, encoding: str, path: str | Path = "") -> tuple[str, str]:
    """Decode `data` with `encoding` ('auto' detects); return (text, encoding used)."""
    enc = normalise(encoding)
    if enc == "auto":
        enc = detect(data, path)
    try:
        return strip_bom(data).decode(enc), enc
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DtgError(f"cannot decode as {enc}", file=path, line=line) from None
