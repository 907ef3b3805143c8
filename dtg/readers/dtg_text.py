"""The official Korean DTG electronic record file (교통안전법 시행규칙 별표, 운행기록의 배열순서): read and write.

Fixed width in BYTES (CP949 text, CRLF lines): one 79-byte header line, then one 68-byte record per
second. Parsing is vectorised: the whole file is one numpy byte buffer, every well-formed record is a
row of a (rows, 68) byte matrix and each field a column slice of it; Python loops only over rejected
lines. The layout, field by field, is in docs/dtg-format.md.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dtg import schema
from dtg.errors import DtgError
from dtg.readers import encoding as enc
from dtg.readers.base import (RawLines, Reasons, ReadResult, assume_tz, display_name, line_bounds,
                              rejects_table)

HEADER_FIELDS: tuple[tuple[str, int], ...] = (
    ("model", 20),         # 운행기록장치 모델명
    ("vin", 17),           # 차대번호
    ("vehicle_type", 2),   # 자동차유형
    ("registration", 12),  # 자동차등록번호
    ("operator", 10),      # 운송사업자등록번호
    ("driver_code", 18),   # 운전자코드
)
HEADER_LEN = sum(w for _, w in HEADER_FIELDS)  # 79

RECORD_FIELDS: tuple[tuple[str, int], ...] = (
    ("daily_distance", 4),   # 일일주행거리, km
    ("total_distance", 7),   # 누적주행거리, km
    ("time", 14),            # 정보발생일시 YYMMDDhhmmss + hundredths, local time
    ("speed", 3),            # 차량속도, km/h
    ("rpm", 4),              # 분당엔진회전수
    ("brake", 1),            # 브레이크 신호
    ("x", 9),                # 차량위치 X: longitude x 1e6
    ("y", 9),                # 차량위치 Y: latitude x 1e6
    ("azimuth", 3),          # 방위각, degrees
    ("accel_x", 6),          # 가속도 ΔVx, +ddd.d m/s^2
    ("accel_y", 6),          # 가속도 ΔVy
    ("status", 2),           # 기기 및 통신상태 코드
)
RECORD_LEN = sum(w for _, w in RECORD_FIELDS)  # 68
OFFSET: dict[str, int] = {}
_pos = 0
for _name, _w in RECORD_FIELDS:
    OFFSET[_name] = _pos
    _pos += _w
WIDTH = dict(RECORD_FIELDS)

VEHICLE_TYPES: dict[str, str] = {
    "11": "city bus", "12": "rural bus", "13": "village bus", "14": "intercity bus", "15": "express bus",
    "16": "chartered bus", "17": "special passenger", "21": "corporate taxi", "22": "private taxi",
    "31": "general freight", "32": "individual freight", "41": "non-commercial",
}
STATUS_CODES: dict[int, str] = {
    0: "normal", 11: "GPS receiver fault", 12: "speed sensor fault", 13: "RPM sensor fault",
    14: "brake signal sensor fault", 21: "sensor input fault", 22: "sensor output fault",
    31: "data output fault", 32: "communication device fault", 41: "distance calculation fault",
    99: "power supply fault",
}
KOREA_LAT = (33.0, 39.0)
KOREA_LON = (124.0, 132.0)


@dataclass(frozen=True)
class DtgHeader:
    """The header line: who recorded the file. Text fields are stored without their '#' padding."""

    model: str = ""
    vin: str = ""
    vehicle_type: str = ""
    registration: str = ""
    operator: str = ""
    driver_code: str = ""

    def to_bytes(self) -> bytes:
        """The 79-byte CP949 header line (fields left-padded with '#'); DtgError if a field is too long."""
        out = b""
        for name, width in HEADER_FIELDS:
            value = getattr(self, name).encode("cp949")
            if len(value) > width:
                raise DtgError(f"header field is {len(value)} bytes in CP949, at most {width}", field=name)
            out += value.rjust(width, b"#")
        return out

    @classmethod
    def from_bytes(cls, line: bytes) -> "DtgHeader":
        """Parse a 79-byte CP949 header line."""
        values, pos = {}, 0
        for name, width in HEADER_FIELDS:
            values[name] = line[pos:pos + width].decode("cp949", errors="replace").strip("# \t")
            pos += width
        return cls(**values)

    def as_dict(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# --------------------------------------------------------------------------------------------- reading

def _digits(cols: np.ndarray, name: str, start: int | None = None,
            width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Unsigned decimal field -> (int64 values, ok mask). Only ASCII digits are accepted.

    `cols` is the record matrix transposed, (68, rows): each byte position is one contiguous row, so
    every step here is a contiguous 1-D operation."""
    a = OFFSET[name] if start is None else start
    w = WIDTH[name] if width is None else width
    d = cols[a] - np.uint8(48)  # wraps below '0', so one comparison checks both ends
    ok = d <= 9
    value = d.astype(np.int64)
    for j in range(1, w):
        d = cols[a + j] - np.uint8(48)
        ok &= d <= 9
        value = value * 10 + d
    return value, ok  # values of rows that are not ok are meaningless


def _accel(cols: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """'+ddd.d' -> (float values, ok mask)."""
    a = OFFSET[name]
    sign = cols[a]
    whole, ok_w = _digits(cols, name, a + 1, 3)
    tenth, ok_t = _digits(cols, name, a + 5, 1)
    ok = ok_w & ok_t & (cols[a + 4] == ord(".")) & ((sign == ord("+")) | (sign == ord("-")) | (sign == ord(" ")))
    value = (whole * 10 + tenth) / 10.0
    return np.where(sign == ord("-"), -value, value), ok


_CUM_DAYS = np.array([0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334], dtype=np.int64)
_MONTH_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _epoch_days(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of valid civil dates (proleptic Gregorian), vectorised."""
    m = np.clip(month, 1, 12)
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    y1 = year - 1
    days_before_year = y1 * 365 + y1 // 4 - y1 // 100 + y1 // 400 - 719162  # 719162 = days to 1970-01-01
    return days_before_year + _CUM_DAYS[m - 1] + ((m > 2) & leap) + day - 1


def _timestamps(cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """YYMMDDhhmmss+hundredths -> (naive local epoch ms, ok mask); invalid calendar values are not ok."""
    value, ok = _digits(cols, "time")
    yy, rest = np.divmod(value, 10 ** 12)
    mo, rest = np.divmod(rest, 10 ** 10)
    dd, rest = np.divmod(rest, 10 ** 8)
    hh, rest = np.divmod(rest, 10 ** 6)
    mi, rest = np.divmod(rest, 10 ** 4)
    ss, cc = np.divmod(rest, 100)
    year = 2000 + yy
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    mdays = _MONTH_DAYS[np.clip(mo, 1, 12) - 1] + ((mo == 2) & leap)
    ok &= (mo >= 1) & (mo <= 12) & (dd >= 1) & (dd <= mdays) & (hh < 24) & (mi < 60) & (ss < 60)
    days = _epoch_days(year, mo, dd)
    ms = days * 86_400_000 + ((hh * 60 + mi) * 60 + ss) * 1000 + cc * 10
    return ms, ok


def localize(naive_ms: np.ndarray, tz: str) -> pa.Array:
    """Naive local epoch ms (wall-clock time in `tz`) -> canonical timestamp array."""
    naive = pa.array(naive_ms, pa.timestamp("ms"))
    try:
        aware = assume_tz(naive, tz)
    except (pa.ArrowInvalid, pa.ArrowKeyError, ValueError) as exc:
        raise DtgError(f"unknown time zone '{tz}': {exc}", field="tz") from None
    return aware.cast(schema.TS_TYPE)


def _record_columns(buf: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """(68, rows): byte j of every record starting at `starts`, one contiguous row per byte position.

    Evenly spaced lines (the usual file) are a strided view of the buffer, transposed in one copy;
    otherwise the records are gathered first."""
    if len(starts) == 0:
        return np.empty((RECORD_LEN, 0), dtype=np.uint8)
    step = np.diff(starts)
    if len(step) == 0 or (step == step[0]).all():
        stride = int(step[0]) if len(step) else RECORD_LEN
        view = np.lib.stride_tricks.as_strided(buf[starts[0]:], shape=(RECORD_LEN, len(starts)),
                                               strides=(1, stride), writeable=False)
        return np.ascontiguousarray(view)
    return np.ascontiguousarray(buf[starts[:, None] + np.arange(RECORD_LEN)].T)


def parse(data: bytes, path: str | Path, encoding: str = "auto", tz: str = schema.TZ,
          vehicle: str | None = None) -> ReadResult:
    """Parse the bytes of a DTG electronic record file. DtgError if it is not one at all."""
    name = display_name(path)
    data = enc.text_bytes(data, name, "DTG record file")
    starts, ends = line_bounds(data)
    header_raw = data[starts[0]:ends[0]]
    try:
        header_text, used = enc.decode(header_raw, encoding, name)
        header_bytes = header_text.encode("cp949")
    except UnicodeEncodeError:
        raise DtgError("header has characters that CP949 cannot hold", file=name, line=1) from None
    if len(header_bytes) != HEADER_LEN:
        raise DtgError(f"not a DTG record file: header line is {len(header_bytes)} bytes, expected {HEADER_LEN}",
                       file=name, line=1)
    header = DtgHeader.from_bytes(header_bytes)
    if not header.vehicle_type.isdigit():
        raise DtgError(f"not a DTG record file: vehicle type '{header.vehicle_type}' is not a 2-digit code",
                       file=name, line=1, field="vehicle_type")

    buf = np.frombuffer(data, dtype=np.uint8)
    line_no = np.arange(1, len(starts) + 1, dtype=np.int64)
    lengths = ends - starts
    body = (line_no > 1) & (lengths > 0)  # blank lines are not records
    rec_starts, rec_len, rec_line = starts[body], lengths[body], line_no[body]
    full = rec_len >= RECORD_LEN
    cols = _record_columns(buf, rec_starts[full])
    good_lines = rec_line[full]

    rs = Reasons(cols.shape[1])
    values: dict[str, np.ndarray] = {}
    for field_name, _ in RECORD_FIELDS:  # layout order: a line's reason is its first bad field
        if field_name == "time":
            values[field_name], ok = _timestamps(cols)
            rs.fail(~ok, "bad_timestamp")
        else:
            decode = _accel if field_name in ("accel_x", "accel_y") else _digits
            values[field_name], ok = decode(cols, field_name)
            rs.fail(~ok, f"bad_number:{field_name}")
    daily, total, naive_ms, speed, rpm, brake, x, y, azimuth, ax, ay, status = (
        values[f] for f, _ in RECORD_FIELDS)
    keep = rs.ok

    variants = []
    lon, lat = x / 1e6, y / 1e6
    fix = keep & ((x != 0) | (y != 0))
    if fix.any():
        mx, my = np.median(lon[fix]), np.median(lat[fix])
        if KOREA_LAT[0] <= mx <= KOREA_LAT[1] and KOREA_LON[0] <= my <= KOREA_LON[1]:
            lon, lat = lat, lon
            variants.append("xy-swapped")
    if (rec_len[full] > RECORD_LEN).any():
        variants.append(f"extra-fields (records up to {int(rec_len.max())} bytes)")

    vehicle_id = header.registration or vehicle or Path(name).stem
    n = int(keep.sum())
    k = slice(None) if n == len(keep) else keep
    table = pa.Table.from_arrays([
        pa.repeat(pa.scalar(vehicle_id, pa.string()), n),
        localize(naive_ms[k], tz),
        pa.array(speed[k].astype(np.float32)),
        pa.array(rpm[k].astype(np.float32)),
        pa.array(brake[k].astype(np.int8)),
        pa.array(lat[k]),
        pa.array(lon[k]),
        pa.array(daily[k].astype(np.float32)),
        pa.array(total[k].astype(np.float64)),
        pa.array(azimuth[k].astype(np.float32)),
        pa.array(ax[k].astype(np.float32)),
        pa.array(ay[k].astype(np.float32)),
        pa.array(status[k].astype(np.int16)),
        pa.repeat(pa.scalar(header.driver_code or None, pa.string()), n),
        pa.repeat(pa.scalar(header.vehicle_type, pa.string()), n),
        pa.repeat(pa.scalar(name, pa.string()), n),
        pa.array(good_lines[k]),
    ], schema=schema.SCHEMA)

    raw = RawLines(data, "cp949" if used == "cp949" else "utf-8", (starts, ends))
    bad_rows = np.concatenate([good_lines[~keep], rec_line[~full]])
    bad_reasons = rs.labels(~keep) + ["truncated_record"] * int((~full).sum())
    order = np.argsort(bad_rows, kind="stable")
    bad_rows = bad_rows[order]
    rejects = rejects_table(name, bad_rows, raw.many(bad_rows), [bad_reasons[i] for i in order])
    return ReadResult(path=name, table=table, rejects=rejects, rows_read=int(body.sum()), format="dtg",
                      encoding=used, variant=", ".join(variants) or "standard", raw=raw,
                      header=header.as_dict())


def read(path: str | Path, encoding: str = "auto", tz: str = schema.TZ, vehicle: str | None = None) -> ReadResult:
    """Read a DTG electronic record file from disk."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DtgError(f"cannot read: {exc.strerror}", file=path) from None
    return parse(data, path, encoding=encoding, tz=tz, vehicle=vehicle)


def sniff(data: bytes) -> bool:
    """True if `data` starts like a DTG record file: a 79-byte header line, records that start with digits."""
    starts, ends = line_bounds(data[:4096])
    if len(starts) < 1:
        return False
    head = data[starts[0]:ends[0]]
    for codec in ("utf-8", "cp949"):
        try:
            if len(head.decode(codec).encode("cp949")) == HEADER_LEN:
                break
        except (UnicodeDecodeError, UnicodeEncodeError):
            continue
    else:
        return False
    if len(starts) < 2:
        return True
    rec = data[starts[1]:ends[1]]
    return rec[:25].isdigit() if len(rec) >= 25 else rec.isdigit()


# --------------------------------------------------------------------------------------------- writing

def _put_digits(mat: np.ndarray, name: str, values: np.ndarray) -> None:
    w, a = WIDTH[name], OFFSET[name]
    values = np.asarray(values, dtype=np.int64)
    bad = (values < 0) | (values >= 10 ** w)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DtgError(f"value {values[i]} does not fit {w} digits (row {i + 1})", field=name)
    powers = 10 ** np.arange(w - 1, -1, -1, dtype=np.int64)
    mat[:, a:a + w] = (values[:, None] // powers % 10 + 48).astype(np.uint8)


def _put_accel(mat: np.ndarray, name: str, values: np.ndarray) -> None:
    a = OFFSET[name]
    tenths = np.rint(np.abs(values) * 10).astype(np.int64)
    if (tenths > 9999).any():
        raise DtgError("acceleration beyond +-999.9 m/s^2", field=name)
    mat[:, a] = np.where(values < 0, ord("-"), ord("+")).astype(np.uint8)
    powers = np.array([1000, 100, 10], dtype=np.int64)
    mat[:, a + 1:a + 4] = (tenths[:, None] // powers % 10 + 48).astype(np.uint8)
    mat[:, a + 4] = ord(".")
    mat[:, a + 5] = (tenths % 10 + 48).astype(np.uint8)


def _column(table: pa.Table, name: str, default: float = 0.0) -> np.ndarray:
    if name not in table.column_names:
        return np.full(table.num_rows, default, dtype=np.float64)
    col = pc.fill_null(table.column(name), default) if table.column(name).null_count else table.column(name)
    return col.to_numpy().astype(np.float64)


def to_bytes(table: pa.Table, header: DtgHeader, *, swap_xy: bool = False, extra: bytes = b"") -> bytes:
    """Encode rows (canonical column names; ts tz-aware) as a DTG record file, CP949 with CRLF lines.

    Values are rounded to the format's resolution (integer km/h, rpm, km, degrees; 1e-6 degrees of
    position; 0.1 m/s^2). Missing optional columns and nulls are written as 0. `swap_xy` and `extra`
    (bytes appended to every record) write the vendor variants the reader accepts.
    """
    n = table.num_rows
    ts = table.column("ts")
    if ts.null_count:
        raise DtgError("ts has nulls", field="ts")
    if getattr(ts.type, "tz", None) is None:
        ts = pc.assume_timezone(ts, timezone=schema.TZ)
    ts = ts.cast(schema.TS_TYPE)
    width = RECORD_LEN + len(extra) + 2
    mat = np.zeros((n, width), dtype=np.uint8)
    year = pc.year(ts).to_numpy()
    if n and ((year < 2000) | (year > 2099)).any():
        raise DtgError("years outside 2000-2099 do not fit the YY field", field="ts")
    ms = pc.millisecond(ts).to_numpy()
    if n and (ms % 10 != 0).any():
        raise DtgError("the time field holds hundredths of a second; ts has finer milliseconds", field="ts")
    stamp = ((((((year - 2000) * 100 + pc.month(ts).to_numpy()) * 100 + pc.day(ts).to_numpy()) * 100
               + pc.hour(ts).to_numpy()) * 100 + pc.minute(ts).to_numpy()) * 100 + pc.second(ts).to_numpy())
    _put_digits(mat, "daily_distance", np.rint(_column(table, "daily_distance")))
    _put_digits(mat, "total_distance", np.rint(_column(table, "total_distance")))
    _put_digits(mat, "time", stamp.astype(np.int64) * 100 + ms // 10)
    _put_digits(mat, "speed", np.rint(_column(table, "speed")))
    _put_digits(mat, "rpm", np.rint(_column(table, "rpm")))
    _put_digits(mat, "brake", _column(table, "brake"))
    x = np.rint(_column(table, "lon") * 1e6)
    y = np.rint(_column(table, "lat") * 1e6)
    if swap_xy:
        x, y = y, x
    _put_digits(mat, "x", x)
    _put_digits(mat, "y", y)
    _put_digits(mat, "azimuth", np.rint(_column(table, "azimuth")))
    _put_accel(mat, "accel_x", _column(table, "accel_x"))
    _put_accel(mat, "accel_y", _column(table, "accel_y"))
    _put_digits(mat, "status", _column(table, "status"))
    if extra:
        mat[:, RECORD_LEN:RECORD_LEN + len(extra)] = np.frombuffer(extra, dtype=np.uint8)
    mat[:, -2] = 13
    mat[:, -1] = 10
    return header.to_bytes() + b"\r\n" + mat.tobytes()


def write(path: str | Path, table: pa.Table, header: DtgHeader, **kwargs) -> None:
    """Write a DTG record file atomically (see `to_bytes`)."""
    from dtg.atomic import write_bytes

    write_bytes(path, to_bytes(table, header, **kwargs))
