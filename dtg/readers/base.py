"""What every reader returns, and the pieces the readers share (rejected rows, raw lines, line splitting)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa

from dtg.errors import DtgError

REJECT_SCHEMA = pa.schema([
    pa.field("file", pa.string()),
    pa.field("row", pa.int64()),
    pa.field("raw", pa.string()),
    pa.field("reason", pa.string()),
])
"""Rows that were read but not accepted: file, 1-based line/row number, raw text, reason code."""


def rejects_table(file: str, rows: list[int] | np.ndarray, raws: list[str], reasons: list[str]) -> pa.Table:
    """Build a reject table; `rows`, `raws` and `reasons` are parallel."""
    n = len(reasons)
    return pa.Table.from_arrays(
        [pa.array([file] * n, pa.string()), pa.array(np.asarray(rows, dtype=np.int64)),
         pa.array(raws, pa.string()), pa.array(reasons, pa.string())],
        schema=REJECT_SCHEMA,
    )


def empty_rejects() -> pa.Table:
    return REJECT_SCHEMA.empty_table()


class Reasons:
    """One reason code per row, the first failure wins; integer codes so marking stays vectorised."""

    def __init__(self, n: int) -> None:
        self.code = np.zeros(n, dtype=np.int16)
        self.names: list[str | None] = [None]

    def fail(self, mask: np.ndarray, name: str) -> None:
        """Give `name` to the rows in `mask` that have no reason yet."""
        m = np.asarray(mask, dtype=bool) & (self.code == 0)
        if m.any():
            if name not in self.names:
                self.names.append(name)
            self.code[m] = self.names.index(name)

    @property
    def ok(self) -> np.ndarray:
        return self.code == 0

    def labels(self, mask: np.ndarray | None = None) -> list[str | None]:
        codes = self.code if mask is None else self.code[mask]
        return [self.names[c] for c in codes]


class RawLines:
    """Random access to the text of a file's lines by 1-based line number, for quarantine records.

    Line boundaries are found (with numpy) the first time a line is asked for; a line is decoded
    only when asked for. Clean files never pay for it.
    """

    def __init__(self, data: bytes, encoding: str, bounds: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.data = data
        self.encoding = encoding
        self._bounds = bounds

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        if self._bounds is None:
            self._bounds = line_bounds(self.data)
        return self._bounds

    def __len__(self) -> int:
        return len(self.bounds[0])

    def get(self, line: int) -> str:
        starts, ends = self.bounds
        if not 1 <= line <= len(starts):
            return ""
        return self.data[starts[line - 1]:ends[line - 1]].decode(self.encoding, errors="replace")

    def many(self, lines: np.ndarray) -> list[str]:
        if len(lines) == 0:
            return []
        return [self.get(int(i)) for i in lines]


def line_bounds(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Start and end byte offsets of every line (LF, CRLF or a bare CR ends one, as in pyarrow's CSV
    parser; the line ending is excluded).

    A final line without a line ending counts; an empty tail after the last line ending does not.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    cut = np.flatnonzero(buf == 10)
    crlf_count = np.count_nonzero(buf[cut[cut > 0] - 1] == 13)
    if np.count_nonzero(buf == 13) != crlf_count:  # a bare CR somewhere (old Mac files): it ends a line too
        lf = buf == 10
        brk = lf | (buf == 13)
        brk[:-1] &= ~lf[1:]  # in CRLF only the LF ends the line
        cut = np.flatnonzero(brk)
    starts = np.concatenate(([0], cut + 1)).astype(np.int64)
    ends = np.concatenate((cut, [len(buf)])).astype(np.int64)
    if len(starts) and starts[-1] == len(buf):
        starts, ends = starts[:-1], ends[:-1]
    if len(ends):
        crlf = (ends > starts) & (buf[np.maximum(ends - 1, 0)] == 13) & (buf[np.minimum(ends, len(buf) - 1)] == 10)
        ends = ends - crlf.astype(np.int64)
    return starts, ends


@dataclass
class ReadResult:
    """One source file read into the canonical schema.

    `table` holds the rows that parsed (canonical schema, `source_file`/`source_row` set, in file
    order); `rejects` the rows that could not be parsed. Every data row of the file is in exactly
    one of them: `rows_read == table.num_rows + rejects.num_rows`.
    """

    path: str
    table: pa.Table
    rejects: pa.Table
    rows_read: int
    format: str
    encoding: str
    variant: str = "standard"
    raw: RawLines | None = field(default=None, repr=False)
    header: dict[str, str] = field(default_factory=dict)

    def raw_text(self, rows: np.ndarray) -> list[str]:
        """The raw text of the given 1-based rows, for quarantine; a rendering if the format has no lines."""
        if self.raw is not None:
            return self.raw.many(rows)
        return [""] * len(rows)


def check_tz(tz: str) -> str:
    """`tz` if Arrow knows the zone; DtgError naming the option otherwise."""
    import pyarrow.compute as pc

    try:
        pc.assume_timezone(pa.array([0], pa.timestamp("ms")), timezone=tz)
    except (pa.ArrowInvalid, pa.ArrowKeyError, ValueError, TypeError):
        raise DtgError(f"unknown time zone '{tz}' (an IANA name such as Asia/Seoul or UTC)", field="tz") from None
    return tz


def display_name(path: str | Path) -> str:
    """How a source file is named in rows, quarantine records and errors."""
    return str(path)


def canonical(table: pa.Table) -> pa.Table:
    """`schema.conform`, except that absent signal columns (speed, rpm, ... are nullable) become nulls:
    a CSV without an RPM column is still a log. vehicle_id, ts and provenance must be present."""
    from dtg import schema

    missing = [c for c in schema.SIGNALS if c not in table.column_names]
    for name in missing:
        table = table.append_column(name, pa.nulls(table.num_rows, schema.BY_NAME[name].type))
    return schema.conform(table)


HOUR_MS = 3_600_000


def per_hour(ms: np.ndarray, exact: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """`exact(ms)` for int64 epoch-ms values, computed once per hour of their range instead of per row.

    `exact` maps ms to ms (a time-zone offset applied, a local date) and must be a shift that is constant
    between time-zone transitions. Hours whose first and last millisecond are shifted alike hold no
    transition, so every value in them shifts alike; values in other hours (a transition inside) and
    ranges of more hours than a sixteenth of the values get `exact` itself.
    """
    if len(ms) == 0:
        return exact(ms)
    h0, h1 = int(ms.min()) // HOUR_MS, int(ms.max()) // HOUR_MS
    if h1 - h0 + 1 > max(64, len(ms) // 16):
        return exact(ms)
    first = np.arange(h0, h1 + 1, dtype=np.int64) * HOUR_MS
    shift = exact(first) - first
    steady = exact(first + HOUR_MS - 1) - (first + HOUR_MS - 1) == shift
    hour = ms // HOUR_MS
    hour -= h0
    out = shift[hour]
    out += ms
    if not steady.all():
        rows = np.flatnonzero(~steady[hour])
        out[rows] = exact(ms[rows])
    return out


def assume_tz(naive: pa.Array | pa.ChunkedArray, tz: str) -> pa.Array:
    """`pc.assume_timezone(naive, tz)` with ambiguous and nonexistent local times taken as the earliest;
    for a timestamp[ms] array the time-zone database is consulted once per hour (`per_hour`), not per row."""
    import pyarrow.compute as pc

    if isinstance(naive, pa.ChunkedArray):
        naive = naive.combine_chunks()
    if naive.null_count == len(naive) or naive.type.unit != "ms":  # other units: Arrow, per row
        return pc.assume_timezone(naive, timezone=tz, ambiguous="earliest", nonexistent="earliest")

    def exact(ms: np.ndarray) -> np.ndarray:
        out = pc.assume_timezone(pa.array(ms, pa.timestamp("ms")), timezone=tz, ambiguous="earliest",
                                 nonexistent="earliest")
        return out.cast(pa.int64()).to_numpy()

    valid = np.asarray(naive.is_valid().to_numpy(zero_copy_only=False)) if naive.null_count else None
    ms = naive.cast(pa.int64())
    ms = (pc.fill_null(ms, pc.min(ms)) if naive.null_count else ms).to_numpy()
    return pa.array(per_hour(ms, exact), pa.timestamp("ms", tz=tz), mask=None if valid is None else ~valid)
