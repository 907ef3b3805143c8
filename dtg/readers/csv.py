"""CSV drive logs: English, Korean or vendor-specific headers mapped to the canonical columns.

Headers are matched after normalisation (case, spaces, '_', '-' and a trailing unit in brackets are
ignored: '속도(km/h)' is '속도'). Canonical names are always accepted; `ALIASES` adds English and
Korean names; a mapping file (`load_mapping`) adds a vendor's own. Parsing uses pyarrow.csv with the
column types fixed, so a clean file is read at pyarrow speed; a file with bad numbers is re-read as
text and converted column by column, and only the offending rows are rejected (`bad_number:<col>`).
Timestamps without a zone are local time in `tz` (Asia/Seoul by default).
"""

from __future__ import annotations

import csv as pycsv
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from dtg import schema
from dtg.errors import DtgError
from dtg.readers import encoding as enc
from dtg.readers.base import (RawLines, Reasons, ReadResult, assume_tz, canonical, display_name, line_bounds,
                              rejects_table)

ALIASES: dict[str, tuple[str, ...]] = {
    "vehicle_id": ("vehicle", "vehicleid", "vehicle_no", "car_id", "carid", "device_id", "deviceid", "plate",
                   "registration", "registration_number", "차량번호", "자동차등록번호", "등록번호", "차량id",
                   "차량", "단말기id"),
    "ts": ("timestamp", "time", "datetime", "date_time", "recorded_at", "시간", "일시", "시각", "정보발생일시",
           "발생일시", "일자시간", "날짜시간", "기록시간"),
    "speed": ("velocity", "speed_kmh", "vehicle_speed", "spd", "속도", "차량속도", "주행속도"),
    "rpm": ("engine_rpm", "enginerpm", "엔진회전수", "엔진rpm", "회전수", "분당엔진회전수", "알피엠"),
    "brake": ("brake_signal", "brake_on", "브레이크", "브레이크신호", "제동", "제동신호"),
    "lat": ("latitude", "gps_lat", "위도", "차량위치y", "gpsy", "y좌표"),
    "lon": ("lng", "long", "longitude", "gps_lon", "gps_lng", "경도", "차량위치x", "gpsx", "x좌표"),
    "daily_distance": ("daily_km", "trip_distance", "일일주행거리", "일주행거리"),
    "total_distance": ("odometer", "odo", "total_km", "누적주행거리", "총주행거리"),
    "azimuth": ("heading", "bearing", "course", "direction", "방위각", "방향", "진행방향"),
    "accel_x": ("ax", "acc_x", "acceleration_x", "가속도x", "가속도δvx", "δvx", "가속도dvx"),
    "accel_y": ("ay", "acc_y", "acceleration_y", "가속도y", "가속도δvy", "δvy", "가속도dvy"),
    "status": ("status_code", "state", "error_code", "상태코드", "기기및통신상태코드", "기기상태", "상태"),
    "driver_code": ("driver", "driver_id", "운전자코드", "운전자", "운전자id"),
    "vehicle_type": ("vehicle_type_code", "자동차유형", "차량유형", "차종"),
}
STRING_COLUMNS = ("vehicle_id", "ts", "driver_code", "vehicle_type")
INT_COLUMNS = ("brake", "status")
NUMERIC_COLUMNS = tuple(c.name for c in schema.COLUMNS
                        if c.name not in STRING_COLUMNS + ("source_file", "source_row"))
_UNIT = re.compile(r"[\(\[\{（][^\)\]\}）]*[\)\]\}）]\s*$")
_TS_PARTS = r"^(?P<base>[^.Z]*?)(?:\.(?P<frac>\d+))?(?P<zone>Z|[+-]\d{2}:?\d{2})?$"


def norm(name: str) -> str:
    """Header name for matching: lower case, no unit suffix in brackets, no spaces, '_', '-' or '.'."""
    name = _UNIT.sub("", name.strip().lstrip("\ufeff"))
    return re.sub(r"[\s_\-\.]+", "", name.lower())


_LOOKUP: dict[str, str] = {}
for _canon, _names in ALIASES.items():
    for _n in (_canon, *_names):
        _LOOKUP[norm(_n)] = _canon
for _canon in schema.NAMES:
    _LOOKUP[norm(_canon)] = _canon


def load_mapping(path: str | Path) -> dict[str, Any]:
    """A vendor mapping from TOML or JSON.

    Either a flat table `{"Their header" = "speed", ...}` or `{columns = {...}, scale = {"speed" = 1.609}}`
    (`scale` multiplies a canonical column after reading, e.g. mph to km/h).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DtgError(f"cannot read mapping: {exc}", file=p) from None
    try:
        if p.suffix.lower() == ".toml":
            import tomllib

            raw = tomllib.loads(text)
        else:
            raw = json.loads(text)
    except ValueError as exc:
        raise DtgError(f"invalid mapping file: {exc}", file=p) from None
    if not isinstance(raw, dict):
        raise DtgError("mapping must be a table of 'header = canonical column'", file=p)
    mapping = raw if "columns" in raw else {"columns": raw}
    cols, scale = mapping.get("columns", {}), mapping.get("scale", {})
    if not isinstance(cols, dict) or not isinstance(scale, dict):
        raise DtgError("'columns' and 'scale' must be tables", file=p)
    for src, dst in cols.items():
        if dst not in schema.BY_NAME or dst in ("source_file", "source_row"):
            raise DtgError(f"'{src}' maps to unknown column '{dst}' (valid: {', '.join(schema.NAMES[:-2])})",
                           file=p, field=str(src))
    for col, factor in scale.items():
        if col not in NUMERIC_COLUMNS or not isinstance(factor, (int, float)):
            raise DtgError(f"scale needs a numeric column and a number, got {col} = {factor!r}", file=p)
    return {"columns": dict(cols), "scale": dict(scale)}


def resolve_columns(headers: list[str], mapping: dict[str, Any] | None, path: str) -> dict[str, str]:
    """{CSV header: canonical column} for the headers dtg understands; DtgError on an ambiguous mapping."""
    explicit = {norm(k): v for k, v in (mapping or {}).get("columns", {}).items()}
    out: dict[str, str] = {}
    taken: dict[str, str] = {}
    for h in headers:
        key = norm(h)
        canon = explicit.get(key) or _LOOKUP.get(key)
        if canon is None:
            continue
        if canon in taken:
            raise DtgError(f"columns '{taken[canon]}' and '{h}' both map to '{canon}'; use --mapping",
                           file=path, line=1, field=h)
        taken[canon] = h
        out[h] = canon
    if "ts" not in taken:
        raise DtgError(f"no timestamp column (looked for ts, time, timestamp, 시간, 일시...; found "
                       f"{', '.join(headers[:12])})", file=path, line=1, field="ts")
    return out


def parse_timestamps(text: pa.Array, tz: str) -> tuple[pa.Array, np.ndarray]:
    """Strings -> (canonical timestamps, ok mask). Accepts 'YYYY-MM-DD hh:mm[:ss][.fff]', 'T' or '/' or '.'
    separators, 'YYYYMMDDhhmmss', and a trailing 'Z' or ±hh:mm zone; naive values are local time in `tz`."""
    s = pc.utf8_trim_whitespace(text.cast(pa.string()))
    s = pc.replace_substring_regex(s, r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})", r"\1-\2-\3 \4:\5:\6")
    s = pc.replace_substring_regex(s, r"^(\d{4})[./](\d{2})[./](\d{2})", r"\1-\2-\3")
    s = pc.replace_substring(s, "T", " ")
    parts = pc.extract_regex(s, _TS_PARTS)
    base = pc.struct_field(parts, "base")
    frac = pc.struct_field(parts, "frac")
    zone = pc.struct_field(parts, "zone")
    naive = pc.coalesce(pc.strptime(base, format="%Y-%m-%d %H:%M:%S", unit="ms", error_is_null=True),
                        pc.strptime(base, format="%Y-%m-%d %H:%M", unit="ms", error_is_null=True))
    # strptime rolls 2024-02-30 over to 03-01: require the parsed day to be the written day.
    day_text = pc.utf8_slice_codeunits(base, 8, 10)
    written_day = pc.cast(pc.if_else(pc.utf8_is_digit(day_text), day_text, "-1"), pa.int64())
    day_ok = pc.fill_null(pc.equal(pc.day(naive), written_day), False)
    ms = pc.cast(pc.utf8_slice_codeunits(pc.utf8_rpad(pc.fill_null(frac, ""), 3, "0"), 0, 3), pa.int64())
    naive_ms = pc.add(naive.cast(pa.int64()), ms)
    has_zone = pc.not_equal(pc.fill_null(zone, ""), "")
    ok = np.asarray(pc.fill_null(pc.and_(pc.is_valid(naive_ms), day_ok), False).to_numpy(zero_copy_only=False))
    local = pc.assume_timezone(pa.array(pc.fill_null(naive_ms, 0).to_numpy(), pa.timestamp("ms")),
                               timezone=tz, ambiguous="earliest", nonexistent="earliest").cast(pa.int64())
    if pc.any(has_zone).as_py():
        z = pc.replace_substring(pc.replace_substring(pc.fill_null(zone, ""), ":", ""), "Z", "+0000")
        sign = pc.if_else(pc.starts_with(z, "-"), -1, 1)
        hh = pc.cast(pc.if_else(has_zone, pc.utf8_slice_codeunits(z, 1, 3), "0"), pa.int64(), safe=False)
        mm = pc.cast(pc.if_else(has_zone, pc.utf8_slice_codeunits(z, 3, 5), "0"), pa.int64(), safe=False)
        offset_ms = pc.multiply(sign, pc.multiply(pc.add(pc.multiply(hh, 60), mm), 60_000))
        zoned = pc.subtract(pc.fill_null(naive_ms, 0), offset_ms)
        local = pc.if_else(has_zone, zoned, local)
    ts = pa.array(np.asarray(local.to_numpy(zero_copy_only=False), dtype=np.int64), pa.int64()).cast(
        pa.timestamp("ms", tz="UTC")).cast(schema.TS_TYPE)
    return ts, ok


def _delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", "\t", ";", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _to_float(col: pa.ChunkedArray | pa.Array) -> tuple[pa.Array | pa.ChunkedArray, np.ndarray]:
    """Text -> (float64, bad mask): a non-empty value that is not a number is bad.

    Columns pyarrow already parsed as floats are returned as they are (float32 or float64, in their
    chunks: no copy into one array)."""
    if pa.types.is_floating(col.type):
        return col, np.zeros(len(col), dtype=bool)
    if pa.types.is_integer(col.type):
        return col.cast(pa.float64()), np.zeros(len(col), dtype=bool)
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    try:
        return pc.cast(pc.utf8_trim_whitespace(col), pa.float64()), np.zeros(len(col), dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        import pandas as pd

        values = pd.to_numeric(pd.Series(col.to_pylist(), dtype="object").str.strip(), errors="coerce")
        text_null = np.asarray(col.is_null().to_numpy(zero_copy_only=False))
        empty = pd.Series(col.to_pylist(), dtype="object").fillna("").str.strip().eq("").to_numpy()
        bad = values.isna().to_numpy() & ~text_null & ~empty
        return pa.array(values.to_numpy(dtype=np.float64), pa.float64(), mask=values.isna().to_numpy()), bad


def _decode(data: bytes, encoding: str, name: str) -> tuple[bytes, str]:
    """(UTF-8 bytes for pyarrow, encoding of the file).

    'auto' decides on the first 64 KiB (pure ASCII or valid UTF-8 there: UTF-8); the rest of a UTF-8
    file is validated by pyarrow as it parses string columns (see `parse`), not decoded twice.
    """
    used = enc.normalise(encoding)
    if used == "auto":
        head = data[:65536]
        cut = head.rfind(b"\n") + 1 if len(data) > len(head) else len(head)
        used = "utf-8" if head[:cut or len(head)].isascii() else enc.detect(head[:cut or len(head)], name)
    if used == "utf-8":
        return data, used
    try:
        return data.decode("cp949").encode("utf-8"), used
    except UnicodeDecodeError as exc:
        raise DtgError("cannot decode as cp949", file=name, line=data.count(b"\n", 0, exc.start) + 1) from None


def _row_lines(utf8: bytes, header_line: int, n: int, invalid: list[str],
               maybe_blank: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(line number of each of the n parsed rows, line numbers of rows pyarrow skipped as malformed,
    which parsed rows are blank lines or None).

    pyarrow is told to keep blank lines (as all-null rows), so a file without malformed rows and without
    a null timestamp has none: row i is line header+1+i, known without looking at line boundaries.
    """
    if not invalid and not maybe_blank:
        return np.arange(n, dtype=np.int64) + header_line + 1, np.empty(0, dtype=np.int64), None
    starts, ends = line_bounds(utf8)
    line_no = np.arange(1, len(starts) + 1, dtype=np.int64)
    body = line_no[line_no > header_line]
    drop = np.zeros(len(body), dtype=bool)
    pending: dict[str, int] = {}
    for t in invalid:
        pending[t] = pending.get(t, 0) + 1
    if pending:
        for i, ln in enumerate(body):
            t = utf8[starts[ln - 1]:ends[ln - 1]].decode("utf-8")
            if pending.get(t, 0) > 0:
                drop[i] = True
                pending[t] -= 1
    rows = body[~drop]
    if len(rows) != n:  # quoted newlines inside values: fall back to row order
        return np.arange(n, dtype=np.int64) + header_line + 1, body[drop], None
    return rows, body[drop], (ends - starts)[rows - 1] == 0


def _trimmed(col: pa.Array) -> pa.Array:
    """Strings without surrounding blanks, '' as null; done on the distinct values (few ids, many rows)."""
    codes = pc.dictionary_encode(col)
    values = pc.utf8_trim_whitespace(codes.dictionary)
    values = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
    if values.equals(codes.dictionary):  # nothing to trim (the usual case): no copy of the column
        return col
    return pc.take(values, codes.indices)


_LINE_END = re.compile(rb"[\r\n]")


def parse(data: bytes, path: str | Path, encoding: str = "auto", tz: str = schema.TZ,
          mapping: dict[str, Any] | None = None, vehicle: str | None = None) -> ReadResult:
    """Parse the bytes of a CSV log. DtgError if it cannot be read as CSV at all."""
    name = display_name(path)
    data = enc.text_bytes(data, name, "CSV log")
    utf8, used = _decode(data, encoding, name)

    lead = re.match(rb"[\r\n]*", utf8).end()
    eol = _LINE_END.search(utf8, lead)  # \n, \r\n or a bare \r ends a line, as in pyarrow's parser
    first_bytes = utf8[lead:eol.start() if eol else len(utf8)]
    if not first_bytes.strip():
        raise DtgError("empty file", file=name)
    blank = utf8[:lead]
    header_line = blank.count(b"\n") + blank.count(b"\r") - blank.count(b"\r\n") + 1
    try:
        first = first_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise DtgError(f"cannot decode the header as {used}", file=name, line=header_line) from None
    delim = _delimiter(first)
    headers = next(pycsv.reader([first], delimiter=delim))
    if len(set(headers)) != len(headers):
        raise DtgError("duplicate column names in the header", file=name, line=header_line)
    cols = resolve_columns(headers, mapping, name)

    invalid: list[str] = []

    def on_invalid(row) -> str:
        invalid.append(row.text)
        return "skip"

    def read(types: dict[str, pa.DataType]) -> pa.Table:
        invalid.clear()
        return pcsv.read_csv(
            pa.BufferReader(utf8),  # zero-copy: through a BytesIO pyarrow parsed the 172 MB benchmark file 40% slower
            read_options=pcsv.ReadOptions(skip_rows=header_line - 1),
            parse_options=pcsv.ParseOptions(delimiter=delim, invalid_row_handler=on_invalid,
                                            ignore_empty_lines=False),
            convert_options=pcsv.ConvertOptions(include_columns=list(cols), column_types=types,
                                                strings_can_be_null=True, quoted_strings_can_be_null=True),
        )

    by_canon = {c: h for h, c in cols.items()}
    scale = (mapping or {}).get("scale", {})

    def number_type(canon: str) -> pa.DataType:
        """float32 columns without a scale factor are parsed as float32: no float64 copy to cast."""
        return pa.float32() if schema.BY_NAME[canon].type == pa.float32() and canon not in scale else pa.float64()

    numeric_types = {h: (pa.string() if c in STRING_COLUMNS else number_type(c)) for h, c in cols.items()}
    # Fastest first: pyarrow parses ISO timestamps and numbers itself; any bad cell falls back to text.
    attempts = [dict(numeric_types, **{by_canon["ts"]: pa.timestamp("ms")}), numeric_types,
                {h: pa.string() for h in cols}]
    raw_table = None
    for types in attempts:
        try:
            raw_table = read(types)
            break
        except pa.ArrowInvalid as exc:
            last = exc
            if "UTF8" in str(exc) or "UTF-8" in str(exc):
                if encoding != "auto" or used != "utf-8":
                    raise DtgError(f"cannot decode as {used}", file=name) from None
                # Valid UTF-8 at the start only: a CP949 export whose first Hangul comes later.
                utf8, used = _decode(data, "cp949", name)
                try:
                    raw_table = read(types)
                    break
                except pa.ArrowInvalid as exc2:
                    last = exc2
    if raw_table is None:
        raise DtgError(f"not a readable CSV: {str(last).splitlines()[0]}", file=name) from None
    ts_raw = raw_table.column(by_canon["ts"])
    row_lines, bad_lines, blank = _row_lines(utf8, header_line, raw_table.num_rows, invalid,
                                             ts_raw.null_count > 0)
    if blank is not None and blank.any():  # blank lines are not rows
        raw_table = raw_table.filter(pa.array(~blank))
        row_lines = row_lines[~blank]
    n = raw_table.num_rows

    rs = Reasons(n)
    out: dict[str, pa.Array] = {}
    ts_col = raw_table.column(by_canon["ts"]).combine_chunks()
    if pa.types.is_timestamp(ts_col.type):
        ok = np.asarray(ts_col.is_valid().to_numpy(zero_copy_only=False))
        ts = assume_tz(ts_col, tz)
    else:
        ts, ok = parse_timestamps(ts_col, tz)
    rs.fail(~ok, "bad_timestamp")
    out["ts"] = ts
    for canon in NUMERIC_COLUMNS:
        if canon not in by_canon:
            continue
        values, bad = _to_float(raw_table.column(by_canon[canon]))
        rs.fail(bad, f"bad_number:{canon}")
        if canon in scale:
            values = pc.multiply(values, float(scale[canon]))
        if canon in INT_COLUMNS:
            f = pc.fill_null(values, 0).to_numpy(zero_copy_only=False)
            col = schema.BY_NAME[canon]
            whole = np.round(f)
            with np.errstate(invalid="ignore"):
                bad_int = np.asarray((f != whole) | (f < col.lo) | (f > col.hi))
            if bad_int.any():  # else every value is a whole number in range: `canonical` casts it as is
                rs.fail(bad_int, f"{canon}_out_of_range")
                values = pa.array(np.where(np.isfinite(f), np.clip(whole, col.lo, col.hi), 0),
                                  mask=np.asarray(values.is_null().to_numpy(zero_copy_only=False)))
        out[canon] = values
    for canon in ("vehicle_id", "driver_code", "vehicle_type"):
        if canon in by_canon:
            out[canon] = _trimmed(raw_table.column(by_canon[canon]).combine_chunks())
    if "vehicle_id" not in out:
        out["vehicle_id"] = pa.repeat(pa.scalar(vehicle or Path(name).stem, pa.string()), n)
    out["source_file"] = pa.repeat(pa.scalar(name, pa.string()), n)
    out["source_row"] = pa.array(row_lines, pa.int64())
    table = canonical(pa.table(out))
    keep = rs.ok
    good = table if keep.all() else table.filter(pa.array(keep))

    raw = RawLines(data, used)
    rej_rows = np.concatenate([row_lines[~keep], bad_lines]).astype(np.int64)
    rej_reasons = rs.labels(~keep) + ["malformed_row"] * len(bad_lines)
    order = np.argsort(rej_rows, kind="stable")
    rej_rows = rej_rows[order]
    rejects = rejects_table(name, rej_rows, raw.many(rej_rows), [rej_reasons[i] for i in order])
    return ReadResult(path=name, table=good, rejects=rejects, rows_read=n + len(bad_lines), format="csv",
                      encoding=used, variant=f"columns: {', '.join(f'{h}->{c}' for h, c in cols.items())}",
                      raw=raw)
