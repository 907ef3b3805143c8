"""The lake: validated rows as Parquet, partitioned by vehicle and local date, one row per (vehicle_id, ts).

Layout: `root/vehicle=<key>/date=YYYY-MM-DD/part-<id>.parquet` with `<key> = partition_key(vehicle_id)`.
Each write adds new part files (never rewrites one), each written atomically (temp file, then rename),
so a concurrent reader sees a part entirely or not at all. Writers take an exclusive lock on
`root/.lock` while they check for duplicates and write, so two ingests cannot store the same second twice.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator
from urllib.parse import unquote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from dtg import atomic, schema
from dtg.errors import DtgError
from dtg.readers.base import per_hour

_SAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
MAX_KEY_BYTES = 200
DIGEST_FILE = "_digest.json"
DIGEST_ALGO = "blake2b-256/2"
"""Version of `table_digest`; cached partition digests of another version are recomputed."""
WRITERS = min(8, os.cpu_count() or 1)
"""Vehicle-days are independent: read and written in parallel (Parquet and fsync release the GIL)."""
MIN_RUN = 64
"""Rows per run, on average, below which `_rows` copies a part's rows instead of slicing them."""
_ENCODINGS = {"ts": "DELTA_BINARY_PACKED", "source_row": "DELTA_BINARY_PACKED",
              "lat": "BYTE_STREAM_SPLIT", "lon": "BYTE_STREAM_SPLIT"}
"""Columns whose distinct values overflow a dictionary page: increasing integers as deltas (a few bits a
row), GPS coordinates with their bytes split into streams that compress well."""
PARQUET_OPTIONS = {
    # LZ4 over dictionary pages (repeating speeds, ids) and `_ENCODINGS`: the 2M benchmark rows take 13 MB
    # against 27 MB for zstd with dictionary pages for every column, and less time to write and to read;
    # zstd with the same encodings saves 1 MB more but is slower both ways (docs/benchmarks.md, Ingest).
    "compression": "lz4",
    "use_dictionary": [c for c in schema.NAMES if c not in _ENCODINGS],
    "column_encoding": _ENCODINGS,
    "write_statistics": ["vehicle_id", "ts"],  # what readers filter on; the rest only costs write time
}


def partition_key(vehicle_id: str) -> str:
    """Path-safe, reversible folder name for a vehicle id.

    Every character other than ASCII letters, digits, '_', '-' and Hangul syllables (가-힣) is
    percent-encoded as UTF-8, so '.', '/', '\\', '%' and NUL can never appear: no key can be '..',
    start with a dot or leave the lake. `vehicle_id_of(partition_key(v)) == v`.
    """
    if not isinstance(vehicle_id, str) or vehicle_id == "":
        raise DtgError("vehicle id is empty", field="vehicle_id")
    out = []
    for ch in vehicle_id:
        if ch in _SAFE or "\uac00" <= ch <= "\ud7a3":
            out.append(ch)
        else:
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8", errors="surrogatepass")))
    key = "".join(out)
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise DtgError(f"vehicle id is too long for a folder name ({len(key.encode())} bytes encoded)",
                       field="vehicle_id")
    return key


def vehicle_id_of(key: str) -> str:
    """Inverse of `partition_key`."""
    return unquote(key, encoding="utf-8", errors="surrogatepass")


@dataclass(frozen=True)
class Partition:
    """One vehicle-day of the lake."""

    vehicle_id: str
    date: dt.date
    path: Path
    files: tuple[Path, ...]


def local_dates(ts: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """The Korean local date of each timestamp, as numpy datetime64[D] (time zone looked up per hour)."""
    if ts.null_count == 0:
        utc = ts.cast(pa.int64())
        utc = (utc.combine_chunks() if isinstance(utc, pa.ChunkedArray) else utc).to_numpy()

        def wall_clock(ms: np.ndarray) -> np.ndarray:
            return pc.local_timestamp(pa.array(ms, schema.TS_TYPE)).cast(pa.int64()).to_numpy()

        return (per_hour(utc, wall_clock) // 86_400_000).view("datetime64[D]")
    local = pc.local_timestamp(ts.cast(schema.TS_TYPE))
    return local.to_numpy().astype("datetime64[D]") if isinstance(local, pa.Array) else \
        local.combine_chunks().to_numpy().astype("datetime64[D]")


def table_digest(table: pa.Table) -> str:
    """Content hash of a canonical table in its current row order (deterministic across part layouts).

    Per column: its name, the validity of each row (or a no-nulls marker), then the values with nulls
    as 0 / '' (strings: their distinct values in order of first appearance, then each row's index into
    them). Chunk by chunk, without copying the table into one chunk: a table split into other chunks
    hashes the same bytes. All-null columns are hashed without materialising fill values.
    """
    h = hashlib.blake2b(digest_size=32)
    n = table.num_rows
    h.update(str(n).encode())
    for name in schema.NAMES:
        col = table.column(name)
        chunks = [c for c in col.chunks if len(c)]
        string = pa.types.is_string(col.type)
        h.update(name.encode())
        if col.null_count:
            for c in chunks:
                h.update(np.ascontiguousarray(c.is_valid().to_numpy(zero_copy_only=False)))
        else:
            h.update(b"\x00no-nulls")
        if col.null_count == n and n:  # all null: the fill values are known without reading anything
            if string:
                h.update(json.dumps([""]).encode())
                h.update(np.zeros(n, dtype=np.int32))
            else:
                h.update(np.zeros(n, dtype=_storage(col.type).to_pandas_dtype()))
            continue
        if string:
            for buf in _string_codes(chunks):
                h.update(buf)
            continue
        for c in chunks:
            if pa.types.is_timestamp(c.type):
                c = c.cast(pa.int64())
            if c.null_count:
                c = pc.fill_null(c, 0)
            h.update(np.ascontiguousarray(c.to_numpy(zero_copy_only=False)))  # buffers, no copies
    return h.hexdigest()


def _storage(typ: pa.DataType) -> pa.DataType:
    return pa.int64() if pa.types.is_timestamp(typ) else typ


def _string_codes(chunks: list[pa.Array]) -> list[bytes | np.ndarray]:
    """The bytes `table_digest` hashes for a string column: JSON of its distinct values in order of first
    appearance (nulls as ''), then every row's int32 index into them, whatever the chunking."""
    codes: dict[str, int] = {}
    parts = []
    for c in chunks:
        enc = pc.dictionary_encode(pc.fill_null(c, "") if c.null_count else c)
        remap = np.array([codes.setdefault(v, len(codes)) for v in enc.dictionary.to_pylist()], dtype=np.int32)
        parts.append(remap[enc.indices.to_numpy(zero_copy_only=False)])
    return [json.dumps(list(codes), ensure_ascii=False).encode(), *parts]


class Lake:
    """A partitioned Parquet store of canonical rows under `root`."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # ------------------------------------------------------------------ layout

    def partition_dir(self, vehicle_id: str, date: dt.date | str) -> Path:
        path = self.root / f"vehicle={partition_key(vehicle_id)}" / f"date={dt.date.fromisoformat(str(date))}"
        root = self.root.resolve()
        if root not in path.resolve().parents:  # defence in depth: partition_key already guarantees it
            raise DtgError(f"vehicle id '{vehicle_id}' would leave the lake", field="vehicle_id")
        return path

    def partitions(self, vehicles: Iterable[str] | None = None, start: dt.date | None = None,
                   end: dt.date | None = None) -> list[Partition]:
        """Vehicle-days present, sorted by (vehicle_id, date); optionally only some vehicles / dates [start, end]."""
        if not self.root.is_dir():
            return []
        wanted = None if vehicles is None else {partition_key(v) for v in vehicles}
        out = []
        for vdir in self.root.iterdir():
            if not vdir.is_dir() or not vdir.name.startswith("vehicle="):
                continue
            key = vdir.name[len("vehicle="):]
            if wanted is not None and key not in wanted:
                continue
            for ddir in vdir.iterdir():
                if not ddir.is_dir() or not ddir.name.startswith("date="):
                    continue
                try:
                    day = dt.date.fromisoformat(ddir.name[len("date="):])
                except ValueError:
                    continue
                if (start is not None and day < start) or (end is not None and day > end):
                    continue
                files = tuple(sorted(p for p in ddir.glob("part-*.parquet") if p.is_file()))
                if files:
                    out.append(Partition(vehicle_id_of(key), day, ddir, files))
        out.sort(key=lambda p: (p.vehicle_id, p.date))
        return out

    def vehicles(self) -> list[str]:
        """Vehicle ids with at least one stored row, sorted."""
        return sorted({p.vehicle_id for p in self.partitions()})

    # ------------------------------------------------------------------ reading

    def read(self, vehicles: Iterable[str] | None = None, start: dt.datetime | None = None,
             end: dt.datetime | None = None, columns: list[str] | None = None,
             dictionary_ids: bool = False) -> pa.Table:
        """Rows of the given vehicles with start <= ts < end, canonical schema, sorted by (vehicle_id, ts).

        `start`/`end` are datetimes (naive ones are Korean local time). `columns` selects columns; the
        sort still uses vehicle_id and ts. `dictionary_ids`: vehicle_id as Parquet stores it,
        dictionary<int32, string> (one dictionary, each id once), so a consumer that only needs runs of
        equal ids (windowing) compares indices, not strings; the rows are the same.
        """
        start_ts, end_ts = _aware(start), _aware(end)
        parts = self.partitions(
            vehicles,
            start=None if start_ts is None else start_ts.astimezone(_seoul()).date(),
            end=None if end_ts is None else end_ts.astimezone(_seoul()).date(),
        )
        files = [str(f) for p in parts for f in p.files]
        cols = list(schema.NAMES) if columns is None else list(columns)
        unknown = [c for c in cols if c not in schema.BY_NAME]
        if unknown:
            raise DtgError(f"unknown column(s) {', '.join(unknown)}", field="columns")
        read_schema = _DICTIONARY_SCHEMA if dictionary_ids else schema.SCHEMA
        if not files:
            return schema.empty_table().cast(read_schema).select(cols)
        dataset = ds.dataset(files, schema=read_schema, format="parquet")
        flt = None
        if start_ts is not None:
            flt = ds.field("ts") >= pa.scalar(start_ts, schema.TS_TYPE)
        if end_ts is not None:
            cond = ds.field("ts") < pa.scalar(end_ts, schema.TS_TYPE)
            flt = cond if flt is None else flt & cond
        read_cols = list(dict.fromkeys(cols + ["vehicle_id", "ts"]))
        table = dataset.to_table(columns=read_cols, filter=flt)
        order = _sort_order(table)
        if order is not None:
            table = table.take(pa.array(order))
        return table.select(cols).combine_chunks()

    def stored_ts(self, vehicle_id: str, date: dt.date) -> np.ndarray:
        """Sorted epoch-ms timestamps already stored for one vehicle-day."""
        return self._stored_ts(self.partition_dir(vehicle_id, date))

    @staticmethod
    def _stored_ts(d: Path) -> np.ndarray:
        files = sorted(d.glob("part-*.parquet")) if d.is_dir() else []
        if not files:
            return np.empty(0, dtype=np.int64)
        t = ds.dataset([str(f) for f in files], schema=schema.SCHEMA, format="parquet").to_table(columns=["ts"])
        return np.sort(t.column("ts").cast(pa.int64()).to_numpy())

    # ------------------------------------------------------------------ writing

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive writer lock for the whole lake (blocks until free)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def write(self, table: pa.Table) -> tuple[int, int]:
        """Store the rows not stored yet; return (rows_ingested, rows_duplicate).

        A row is a duplicate if its (vehicle_id, ts) is already in the lake or appears earlier in
        `table`. Rows must be valid canonical rows (non-null vehicle_id and ts).
        """
        table = schema.conform(table)
        if table.num_rows == 0:
            return 0, 0
        if table.column("vehicle_id").null_count or table.column("ts").null_count:
            raise DtgError("rows without vehicle_id or ts cannot be stored", field="ts")
        vid = table.column("vehicle_id").combine_chunks()
        codes = pc.dictionary_encode(vid)
        vehicle_names = codes.dictionary.to_pylist()
        vidx = codes.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        ts = table.column("ts").cast(pa.int64()).to_numpy()
        day = local_dates(table.column("ts"))
        day_num = day.view(np.int64)
        # Rows grouped by vehicle-day, by ts inside a group, earlier rows first among equal keys. Logs are
        # usually in time order already: one stable integer sort on the group key, lexsort only if not.
        key = vidx * (int(day_num.max() - day_num.min()) + 1) + (day_num - day_num.min())
        if key.max() < 2**31:
            key = key.astype(np.int32)  # sorts 4x faster than int64
        order = np.argsort(key, kind="stable")
        k_s, t_s = key[order], ts[order]
        if not ((t_s[1:] > t_s[:-1]) | (k_s[1:] != k_s[:-1])).all():
            order = np.lexsort((ts, key))  # key orders like (vehicle, day)
            k_s, t_s = key[order], ts[order]
        bounds = np.concatenate(([0], np.flatnonzero(k_s[1:] != k_s[:-1]) + 1, [len(order)]))

        def new_rows(lo: int, hi: int) -> tuple[np.ndarray, Path, bool]:
            """(rows of one vehicle-day group not stored yet, as indices into `table` in ts order;
            its folder; whether the vehicle-day is new to the lake)."""
            t = t_s[lo:hi]
            first = np.ones(len(t), dtype=bool)
            first[1:] = t[1:] != t[:-1]
            folder = self.partition_dir(vehicle_names[int(vidx[order[lo]])], day[order[lo]].astype(dt.date))
            stored = self._stored_ts(folder)
            if len(stored) == 0:
                return order[lo:hi][first], folder, True
            return order[lo:hi][first & ~np.isin(t, stored)], folder, False

        with self.lock():
            with ThreadPoolExecutor(max_workers=min(WRITERS, len(bounds) - 1)) as pool:
                found = list(pool.map(lambda g: new_rows(*g), zip(bounds[:-1], bounds[1:])))
                ingested = sum(len(keep) for keep, _, _ in found)
                stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%f")

                def store(keep: np.ndarray, folder: Path, fresh: bool) -> None:
                    name = f"part-{stamp}-{uuid.uuid4().hex[:8]}.parquet"
                    part = _rows(table, keep)
                    atomic.write_parquet(folder / name, part, **PARQUET_OPTIONS)
                    if fresh:  # a new vehicle-day: its digest is this part's, already in ts order
                        _write_digest(folder, [name], part.num_rows, table_digest(part))

                list(pool.map(lambda f: store(*f), [f for f in found if len(f[0])]))
        return ingested, table.num_rows - ingested

    # ------------------------------------------------------------------ fingerprint

    def _partition_digest(self, folder: Path) -> tuple[int, str]:
        files = sorted(folder.glob("part-*.parquet"))
        names = [f.name for f in files]
        digest_path = folder / DIGEST_FILE
        if digest_path.is_file():
            try:
                cached = json.loads(digest_path.read_text())
                if cached.get("parts") == names and cached.get("algo") == DIGEST_ALGO:
                    return int(cached["rows"]), str(cached["digest"])
            except (ValueError, KeyError):
                pass
        t = ds.dataset([str(f) for f in files], schema=schema.SCHEMA, format="parquet").to_table()
        ts = t.column("ts").cast(pa.int64()).to_numpy()
        if not (np.diff(ts) > 0).all():  # one part (the usual case) is sorted already
            t = t.take(pa.array(np.argsort(ts, kind="stable")))
        rows, digest = t.num_rows, table_digest(t)
        _write_digest(folder, names, rows, digest)
        return rows, digest

    def fingerprint(self) -> str:
        """Content hash of the whole lake: equal iff the stored rows are equal, however they were split
        into part files or ingest runs. Per-partition digests are cached in `_digest.json` beside the
        parts, keyed by the part file names (unique per write), so only changed partitions are read."""
        h = hashlib.sha256()
        for p in self.partitions():
            rows, sha = self._partition_digest(p.path)
            h.update(f"{p.vehicle_id}\x00{p.date}\x00{rows}\x00{sha}\n".encode())
        return h.hexdigest()

    def num_rows(self) -> int:
        """Rows stored (from Parquet footers, without reading data)."""
        return sum(pq.ParquetFile(f).metadata.num_rows for p in self.partitions() for f in p.files)


def _rows(table: pa.Table, idx: np.ndarray) -> pa.Table:
    """Rows `idx` of `table`. A log is mostly long runs of consecutive rows per vehicle-day, which become
    zero-copy slices (Parquet and the digest take a table in chunks); a scattered selection is one take."""
    brk = np.flatnonzero(np.diff(idx) != 1) + 1
    if len(brk) + 1 > max(1, len(idx) // MIN_RUN):
        return table.take(pa.array(idx))
    starts = np.concatenate(([0], brk))
    ends = np.concatenate((brk, [len(idx)]))
    return pa.concat_tables([table.slice(int(idx[a]), int(b - a)) for a, b in zip(starts, ends)])


def _write_digest(folder: Path, parts: list[str], rows: int, digest: str) -> None:
    """Cache a partition's digest beside its parts; keyed by the part names, so any later write makes
    it stale (part names are unique per write) and `fingerprint()` recomputes it.

    Written to a temporary file and renamed, but not fsynced: a cache that a crash leaves missing, empty
    or stale is only recomputed, so it does not pay the two fsyncs per vehicle-day a durable write costs."""
    tmp = folder / f"{atomic.TMP_PREFIX}{DIGEST_FILE}.{uuid.uuid4().hex}"
    text = json.dumps({"algo": DIGEST_ALGO, "parts": parts, "rows": rows, "digest": digest}, indent=2,
                      sort_keys=True, ensure_ascii=False)
    try:
        tmp.write_text(text + "\n", encoding="utf-8")
        os.replace(tmp, folder / DIGEST_FILE)
    except OSError:
        tmp.unlink(missing_ok=True)


_DICTIONARY_SCHEMA = schema.SCHEMA.set(
    schema.SCHEMA.get_field_index("vehicle_id"),
    schema.SCHEMA.field("vehicle_id").with_type(pa.dictionary(pa.int32(), pa.string())))


def _sort_order(table: pa.Table) -> np.ndarray | None:
    """Row order sorting `table` by (vehicle_id, ts), or None if it is sorted already.

    Sorts integer keys (each vehicle's rank among the few distinct ids, epoch ms) instead of strings.
    """
    if table.num_rows < 2:
        return None
    codes = pc.dictionary_encode(table.column("vehicle_id").combine_chunks())
    names = codes.dictionary.to_pylist()
    rank = np.empty(len(names), dtype=np.int64)
    rank[np.argsort(np.array([n.encode("utf-8") for n in names], dtype=object), kind="stable")] = \
        np.arange(len(names))
    v = rank[codes.indices.to_numpy(zero_copy_only=False)]
    t = table.column("ts").cast(pa.int64()).to_numpy()
    dv, dts = np.diff(v), np.diff(t)
    if ((dv > 0) | ((dv == 0) & (dts >= 0))).all():
        return None
    return np.lexsort((t, v))


def _seoul() -> dt.tzinfo:
    from zoneinfo import ZoneInfo

    return ZoneInfo(schema.TZ)


def _aware(t: dt.datetime | None) -> dt.datetime | None:
    if t is None:
        return None
    if isinstance(t, str):
        t = dt.datetime.fromisoformat(t)
    if t.tzinfo is None:
        t = t.replace(tzinfo=_seoul())
    return t

