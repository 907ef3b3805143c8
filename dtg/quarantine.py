"""The quarantine: every row that was read but not stored, with file, row, raw text, reason and time.

One Parquet file per ingested source file that had rejects, written atomically before that file's
rows reach the lake, so a rejected row is never lost, even if the run dies afterwards.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from dtg import atomic
from dtg.readers.base import REJECT_SCHEMA

SCHEMA = pa.schema(list(REJECT_SCHEMA) + [pa.field("ingested_at", pa.timestamp("ms", tz="UTC"))])


def write(folder: str | Path, rejects: pa.Table, ingested_at: dt.datetime | None = None) -> Path | None:
    """Append `rejects` (file, row, raw, reason) to the quarantine; return the new file (None if empty)."""
    if rejects.num_rows == 0:
        return None
    when = ingested_at or dt.datetime.now(dt.timezone.utc)
    table = rejects.select(REJECT_SCHEMA.names).cast(REJECT_SCHEMA).append_column(
        SCHEMA.field("ingested_at"), pa.array([when] * rejects.num_rows, SCHEMA.field("ingested_at").type))
    path = Path(folder) / f"part-{when.strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex[:8]}.parquet"
    atomic.write_parquet(path, table)
    return path


def read(folder: str | Path) -> pa.Table:
    """Everything quarantined so far, ordered by ingest time, file and row."""
    files = sorted(str(p) for p in Path(folder).glob("part-*.parquet")) if Path(folder).is_dir() else []
    if not files:
        return SCHEMA.empty_table()
    t = ds.dataset(files, schema=SCHEMA, format="parquet").to_table()
    return t.sort_by([("ingested_at", "ascending"), ("file", "ascending"), ("row", "ascending")])
