"""The canonical record: one row = one second of one vehicle (docs/design.md §2).

Every reader produces a table with these columns and types; validation checks the ranges below.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

TZ = "Asia/Seoul"
"""DTG devices record Korean local time; naive CSV timestamps are read in this zone unless told otherwise."""

TS_TYPE = pa.timestamp("ms", tz=TZ)


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    unit: str
    required: bool
    lo: float | None = None
    hi: float | None = None


COLUMNS: tuple[Column, ...] = (
    Column("vehicle_id", pa.string(), "registration number or device id", True),
    Column("ts", TS_TYPE, "record time (Korean local time)", True),
    Column("speed", pa.float32(), "km/h", True, 0.0, 255.0),
    Column("rpm", pa.float32(), "rev/min", True, 0.0, 9999.0),
    Column("brake", pa.int8(), "0 off, 1 on", True, 0, 1),
    Column("lat", pa.float64(), "WGS-84 degrees", True, -90.0, 90.0),
    Column("lon", pa.float64(), "WGS-84 degrees", True, -180.0, 180.0),
    Column("daily_distance", pa.float32(), "km since midnight", False, 0.0, 9999.0),
    Column("total_distance", pa.float64(), "km", False, 0.0, 9999999.0),
    Column("azimuth", pa.float32(), "degrees, 0-360", False, 0.0, 360.0),
    Column("accel_x", pa.float32(), "m/s^2", False, -100.0, 100.0),
    Column("accel_y", pa.float32(), "m/s^2", False, -100.0, 100.0),
    Column("status", pa.int16(), "device/communication status code, 0 = normal", False, 0, 99),
    Column("driver_code", pa.string(), "driver code from the DTG header", False),
    Column("vehicle_type", pa.string(), "DTG vehicle type code (11-41)", False),
    Column("source_file", pa.string(), "file the row came from", True),
    Column("source_row", pa.int64(), "1-based line/row number in that file", True),
)

BY_NAME: dict[str, Column] = {c.name: c for c in COLUMNS}
NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
REQUIRED: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.required)
SIGNALS: tuple[str, ...] = ("speed", "rpm", "brake", "lat", "lon", "daily_distance", "total_distance",
                            "azimuth", "accel_x", "accel_y")
"""Numeric per-second signals a window or an event detector may use."""

SCHEMA = pa.schema([pa.field(c.name, c.type, nullable=not c.required or c.name in SIGNALS) for c in COLUMNS])

KOREA_BBOX = (33.0, 39.0, 124.0, 132.0)
"""(lat_min, lat_max, lon_min, lon_max): where Korean DTG positions are expected to lie."""


def empty_table() -> pa.Table:
    """A zero-row table in the canonical schema."""
    return SCHEMA.empty_table()


def conform(table: pa.Table) -> pa.Table:
    """Return `table` with exactly the canonical columns, in order and cast to canonical types.

    Missing optional columns become nulls; extra columns are dropped. Raises KeyError for a missing
    required column.
    """
    arrays = []
    for col in COLUMNS:
        if col.name in table.column_names:
            arrays.append(table.column(col.name).cast(col.type))
        elif col.required:
            raise KeyError(col.name)
        else:
            arrays.append(pa.nulls(table.num_rows, col.type))
    return pa.Table.from_arrays(arrays, schema=SCHEMA)
