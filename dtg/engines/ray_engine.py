"""`dtg score --engine ray`: the job's vehicle-days scored by an actor pool on Ray Data.

The driver keeps what must happen exactly once: the run lock, the ledger, ingest of new logs and the
atomic commits — `dtg.scoring.run_score` around `score_on_ray`, the same
code as the local engine. Ray does the heavy part: a dataset with one row per vehicle-day of the
inputs to score, mapped (`map_batches`) by a pool of actors that each load the model once from the
registry (safetensors, sha256 checked against the card). Per vehicle-day an actor reads the lake
(shared storage) for that vehicle's seconds plus the context seconds before and after them — from
the neighbouring date partition when a drive crosses midnight — windows them and runs the model with
the local engine's own function, `dtg.scoring.score_chunks`. So scores, anomalies, file names and
ledger rows equal the local engine's.

Each actor writes its vehicle-day's three output tables as hidden temp files beside their final
names in the scores folder (shared storage on a cluster) and returns only their names, counts and
first intervals — in input order (`preserve_order`) — to the driver's committer, which commits each
input after its last vehicle-day (ledger intent → renames → done). A killed run leaves only temp
files and 'running' ledger rows, which the next run removes and scores again, as with the local
engine.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa

from dtg.errors import DtgError

INSTALL_HINT = "pip install 'dtg[ray]'"


def require_ray() -> Any:
    """The `ray` module (with Ray Data), or a one-line DtgError saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise DtgError(f"--engine ray needs Ray, which is not installed ({exc.msg}); install it with: "
                       f"{INSTALL_HINT}", field="engine") from None
    return ray


def init_kwargs(address: str | None, workers: int | None, env: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """`ray.init` arguments: join the cluster at `address` (or $RAY_ADDRESS), else start a local Ray
    with `workers` CPUs (default: this machine's), without dashboard or worker logs on the console."""
    if workers is not None and workers < 1:
        raise DtgError(f"workers must be >= 1, got {workers}", field="workers")
    common = {"log_to_driver": False, "logging_level": logging.WARNING}
    address = address or env.get("RAY_ADDRESS") or None
    if address:
        return {"address": address, **common}
    return {"num_cpus": workers or os.cpu_count() or 1, "include_dashboard": False, **common}


@contextlib.contextmanager
def ray_session(address: str | None, workers: int | None) -> Iterator[Any]:
    """A connected Ray: the caller's if Ray is already initialised (left running), else one started or
    joined here and shut down on exit."""
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    kwargs = init_kwargs(address, workers)
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {kwargs['address']}" if "address" in kwargs else "a local Ray"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DtgError(f"cannot start or join {where}: {first}", field="address") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def vehicle_day_tasks(todo: Sequence[tuple[Any, dict[str, np.ndarray]]]) -> list[dict[str, Any]]:
    """One row per vehicle-day of each input, in the order the local engine scores them: input index,
    chunk index within the input, vehicle id, Korean date, the input's digest (it names the output
    files), and the input's own seconds that day (epoch ms, little-endian int64 bytes)."""
    from dtg.scoring import vehicle_days

    items = []
    for i, (inp, keys) in enumerate(todo):
        for j, (vehicle, date, ts) in enumerate(vehicle_days(keys)):
            items.append({"input": i, "chunk": j, "vehicle": vehicle, "date": date, "digest": inp.digest,
                          "ts": np.asarray(ts, dtype="<i8").tobytes()})
    return items


RESULT_SCHEMA = pa.schema([("input", pa.int64()), ("chunk", pa.int64()), ("moves", pa.string()),
                           ("rows", pa.int64()), ("windows", pa.int64()), ("anomalies", pa.int64()),
                           ("computed", pa.int64()), ("intervals", pa.string()), ("error", pa.string())])
"""One row per vehicle-day: its temp files as JSON [[temp, final], ...] relative to the scores folder,
its counts, its first interval records (JSON) — or the DtgError that failed it."""


class ChunkScorer:
    """Ray Data actor: the model loaded once; each call scores a batch of vehicle-day tasks and writes
    their outputs as hidden temp files (named by the run) beside their final names in `out_dir`."""

    def __init__(self, model_dir: str, device: str, lake_dir: str, threshold: Any, batch_size: int,
                 out_dir: str, run_id: str, threads: int = 1) -> None:
        import torch

        from dtg.lake import Lake
        from dtg.scoring import load_scorer

        torch.set_num_threads(threads)
        self.scorer = load_scorer(model_dir, device)
        self.lake = Lake(lake_dir)
        self.threshold = threshold
        self.batch_size = batch_size
        self.out_dir = Path(out_dir)
        self.run_id = run_id

    def __call__(self, batch: pa.Table) -> pa.Table:
        from dtg.scoring import SUMMARY_ANOMALY_LIMIT, interval_records, score_chunks, write_chunk

        rows: dict[str, list[Any]] = {name: [] for name in RESULT_SCHEMA.names}
        for task in batch.to_pylist():
            keys = {task["vehicle"]: np.frombuffer(task["ts"], dtype="<i8")}
            moves = intervals = error = None
            counts = [0, 0, 0, 0]
            try:
                chunks = list(score_chunks(self.scorer, self.lake, keys, self.threshold, self.batch_size))
                if len(chunks) != 1:  # one vehicle-day in, one chunk out: anything else is a bug
                    raise RuntimeError(f"expected 1 chunk for {task['vehicle']} {task['date']}, got {len(chunks)}")
                chunk = chunks[0]
                written = write_chunk(chunk, self.out_dir, task["digest"], self.scorer.tag, self.run_id)
                moves = json.dumps([[str(Path(t).relative_to(self.out_dir)), str(Path(f).relative_to(self.out_dir))]
                                    for t, f in written])
                out = chunk.outputs
                counts = [out.seconds.num_rows, out.windows.num_rows, out.anomalies.num_rows, chunk.windows_computed]
                intervals = json.dumps(interval_records(out.anomalies, SUMMARY_ANOMALY_LIMIT), ensure_ascii=False)
            except DtgError as exc:
                error = str(exc)
            for name, value in zip(RESULT_SCHEMA.names, (task["input"], task["chunk"], moves, *counts, intervals,
                                                         error)):
                rows[name].append(value)
        return pa.table(rows, schema=RESULT_SCHEMA)


def pool_size(ray: Any, workers: int | None, tasks: int, gpus_each: int) -> int:
    """Actors in the pool: `workers` (default: the cluster's CPUs, or GPUs with --device cuda), never
    more than there are tasks."""
    resources = ray.cluster_resources()
    if gpus_each:
        have = int(resources.get("GPU", 0))
        if have < 1:
            raise DtgError("--device cuda, but the Ray cluster has no GPU", field="device")
        size = min(workers or have, have)
    else:
        size = workers or max(1, int(resources.get("CPU", 1)))
    return max(1, min(size, tasks))


def score_on_ray(todo: Sequence[tuple[Any, dict[str, np.ndarray]]], scorer: Any, lake: Any, threshold: Any,
                 batch_size: int, committer: Any, *, device: str = "auto", address: str | None = None,
                 workers: int | None = None, say: Any = None) -> None:
    """Score the job's inputs on Ray and hand their written chunks to `committer` (dtg.scoring's) in
    the local engine's order: add each chunk, finish an input after its last one, fail it at its
    first error (the temp files of its later chunks are deleted). Ray starts only when there is
    something to score."""
    say = say or (lambda msg: None)
    out_dir = Path(committer.out_dir)
    items = vehicle_day_tasks(todo)
    done_upto = 0  # inputs before this index are finished or failed
    failed: set[int] = set()

    def finish_before(index: int) -> None:
        nonlocal done_upto
        while done_upto < index:
            if done_upto not in failed:
                committer.finish(todo[done_upto][0])
            done_upto += 1

    if items:
        gpus_each = 1 if device == "cuda" else 0
        with ray_session(address, workers) as ray:
            ctx = ray.data.DataContext.get_current()
            saved = (ctx.execution_options.preserve_order, ctx.enable_progress_bars)
            ctx.execution_options.preserve_order, ctx.enable_progress_bars = True, False
            try:
                size = pool_size(ray, workers, len(items), gpus_each)
                say(f"ray: {len(items)} vehicle-day(s) of {len(todo)} input(s) on {size} actor(s)")
                ds = ray.data.from_items(items, override_num_blocks=min(len(items), 4 * size))
                results = ds.map_batches(
                    ChunkScorer, batch_size=1, batch_format="pyarrow", num_cpus=1, num_gpus=gpus_each,
                    compute=ray.data.ActorPoolStrategy(size=size),
                    fn_constructor_kwargs={"model_dir": str(scorer.model_dir.resolve()),
                                           "device": "cuda" if gpus_each else "cpu",
                                           "lake_dir": str(lake.root.resolve()), "threshold": threshold,
                                           "batch_size": batch_size, "out_dir": str(out_dir.resolve()),
                                           "run_id": committer.run_id})
                previous = (-1, -1)
                for batch in results.iter_batches(batch_size=None, batch_format="pyarrow"):
                    for row in batch.to_pylist():
                        i, j = row["input"], row["chunk"]
                        if (i, j) <= previous:
                            raise RuntimeError(f"Ray returned vehicle-days out of order: {(i, j)} after {previous}")
                        previous = (i, j)
                        finish_before(i)
                        inp = todo[i][0]
                        moves = [(str(out_dir / t), str(out_dir / f)) for t, f in json.loads(row["moves"] or "[]")]
                        if i in failed:  # an earlier vehicle-day of this input failed: drop this one
                            for tmp, _final in moves:
                                Path(tmp).unlink(missing_ok=True)
                        elif row["error"] is not None:
                            failed.add(i)
                            committer.fail(inp, DtgError(row["error"]))
                        else:
                            counts = dict(zip(("rows", "windows", "anomalies", "computed"),
                                              (row["rows"], row["windows"], row["anomalies"], row["computed"])))
                            committer.add_written(inp, moves, counts, json.loads(row["intervals"]))
            finally:
                ctx.execution_options.preserve_order, ctx.enable_progress_bars = saved
    finish_before(len(todo))
