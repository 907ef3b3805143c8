"""Readers: one per input format, each producing the canonical Arrow table (docs/design.md §2).

`read_source(path)` picks the reader from `fmt` or, with 'auto', from the file's content (Parquet
magic bytes, a 79-byte DTG header line) and then its extension.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dtg import schema
from dtg.errors import DtgError
from dtg.readers.base import REJECT_SCHEMA, RawLines, ReadResult, check_tz

FORMATS = ("auto", "dtg", "csv", "parquet")
EXTENSIONS = {".dtg": "dtg", ".txt": "dtg", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet"}

__all__ = ["FORMATS", "EXTENSIONS", "REJECT_SCHEMA", "RawLines", "ReadResult", "detect_format", "read_source"]


def detect_format(path: str | Path, data: bytes) -> str:
    """'dtg', 'csv' or 'parquet' from the content first, then the extension; DtgError if neither says."""
    from dtg.readers import dtg_text
    from dtg.readers.encoding import looks_binary

    if data.startswith(b"PAR1"):
        return "parquet"
    if looks_binary(data):
        raise DtgError("binary file, not a DTG record file, CSV or Parquet", file=path)
    if dtg_text.sniff(data):
        return "dtg"
    ext = Path(path).suffix.lower()
    if EXTENSIONS.get(ext) == "csv":
        return "csv"
    first = data[:4096].split(b"\n", 1)[0]
    if b"," in first or b"\t" in first or b";" in first:
        return "csv"
    if EXTENSIONS.get(ext) == "dtg":
        return "dtg"  # let the DTG reader say what is wrong with it
    raise DtgError("unrecognised format: not a DTG record file, CSV or Parquet", file=path)


def read_source(path: str | Path, fmt: str = "auto", encoding: str = "auto", tz: str = schema.TZ,
                mapping: dict[str, Any] | None = None, vehicle: str | None = None) -> ReadResult:
    """Read one file into the canonical schema; rows that cannot be parsed come back as `rejects`.

    Raises DtgError for a file that cannot be read at all (missing, empty, binary, wrong format).
    `vehicle` names the vehicle when the file itself does not (a CSV without a vehicle column, a DTG
    header with an empty registration number); the file stem is the last resort.
    """
    from dtg.readers import csv as csv_reader
    from dtg.readers import dtg_text
    from dtg.readers import parquet as parquet_reader

    if fmt not in FORMATS:
        raise DtgError(f"unknown format '{fmt}' (choose from {', '.join(FORMATS)})", field="format")
    check_tz(tz)
    try:
        data = Path(path).read_bytes()
    except IsADirectoryError:
        raise DtgError("is a directory", file=path) from None
    except OSError as exc:
        raise DtgError(f"cannot read: {exc.strerror}", file=path) from None
    if not data:
        raise DtgError("empty file", file=path)
    if fmt == "auto":
        fmt = detect_format(path, data)
    if fmt == "dtg":
        return dtg_text.parse(data, path, encoding=encoding, tz=tz, vehicle=vehicle)
    if fmt == "csv":
        return csv_reader.parse(data, path, encoding=encoding, tz=tz, mapping=mapping, vehicle=vehicle)
    return parquet_reader.read(path, tz=tz, vehicle=vehicle)
