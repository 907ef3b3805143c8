"""Window sets for the model/training tests, from the real-derived tests/data/train_fixture.csv."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd
import pyarrow as pa

from dtg.splits import SplitSpec
from dtg.windowset import WindowSet, build_window_set

FIXTURE = Path(__file__).parent / "data" / "train_fixture.csv"


@lru_cache(maxsize=None)
def fixture_table() -> pa.Table:
    """Two real drives (1,800 seconds) as a canonical-looking Arrow table."""
    frame = pd.read_csv(FIXTURE)
    frame["ts"] = pd.to_datetime(frame["ts"], format="%Y-%m-%dT%H:%M:%S%z").dt.tz_convert("Asia/Seoul")
    return pa.Table.from_pandas(frame, preserve_index=False)


def window_set(size: int = 20, stride: int = 1, features: str = "speed,rpm,brake,lat",
               rows: int | None = None) -> WindowSet:
    """A window set with a 70/15/15 time split; `rows` keeps only each vehicle's first rows (speed)."""
    table = fixture_table()
    if rows is not None:
        frame = table.to_pandas().groupby("vehicle_id", sort=False).head(rows)
        table = pa.Table.from_pandas(frame, preserve_index=False)
    return build_window_set(table, size=size, stride=stride, features=features, split=SplitSpec((0.7, 0.15, 0.15)))
