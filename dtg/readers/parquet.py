"""Parquet drive logs in the canonical schema (e.g. exported by another dtg lake or a data pipeline).

Columns are matched by canonical name; missing optional columns become nulls. A naive `ts` is local
time in `tz`; `source_file`/`source_row` are set to this file and its 1-based row number.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dtg import schema
from dtg.errors import DtgError
from dtg.readers.base import ReadResult, assume_tz, canonical, display_name, empty_rejects


def read(path: str | Path, tz: str = schema.TZ, vehicle: str | None = None) -> ReadResult:
    """Read a canonical-schema Parquet file. DtgError if it is not Parquet or lacks `ts`."""
    name = display_name(path)
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DtgError(f"not a readable Parquet file: {str(exc).splitlines()[0]}", file=name) from None
    n = table.num_rows
    if "ts" not in table.column_names:
        raise DtgError(f"no 'ts' column (has {', '.join(table.column_names[:12])})", file=name, field="ts")
    ts = table.column("ts")
    try:
        if pa.types.is_timestamp(ts.type):
            if ts.type.tz is None:
                ts = assume_tz(ts, tz)
            ts = ts.cast(schema.TS_TYPE)
        else:
            from dtg.readers.csv import parse_timestamps

            parsed, ok = parse_timestamps(ts.combine_chunks().cast(pa.string()), tz)
            ts = pc.if_else(pa.array(ok), parsed, pa.scalar(None, schema.TS_TYPE))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DtgError(f"cannot read timestamps: {exc}", file=name, field="ts") from None
    table = table.set_column(table.column_names.index("ts"), "ts", ts)
    if "vehicle_id" not in table.column_names:
        table = table.append_column("vehicle_id", pa.array([vehicle or Path(name).stem] * n, pa.string()))
    table = table.drop_columns([c for c in ("source_file", "source_row") if c in table.column_names])
    table = table.append_column("source_file", pa.array([name] * n, pa.string()))
    table = table.append_column("source_row", pa.array(np.arange(1, n + 1, dtype=np.int64)))
    try:
        table = canonical(table)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DtgError(f"a column does not fit the canonical schema: {exc}", file=name) from None
    return ReadResult(path=name, table=table, rejects=empty_rejects(), rows_read=n, format="parquet",
                      encoding="binary")
