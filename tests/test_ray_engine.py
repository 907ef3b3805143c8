"""`dtg score --engine ray`: the same files, anomalies, scores and ledger rows as the local engine.

The tests marked `ray` start a local Ray (2 CPUs) through dtg itself; they are skipped with the reason
when Ray is not installed (`pip install 'dtg[ray]'`). The others check the engine's pieces without Ray.
"""

from __future__ import annotations

import datetime as dt
import json
import pickle
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dtg.cli import app
from dtg.engines import ray_engine
from dtg.errors import DtgError
from dtg.lake import Lake
from dtg.ledger import Ledger
from dtg.readers import read_source
from dtg.scoring import load_scorer, score_chunks, vehicle_days
from dtg.thresholds import FixedThreshold
from test_scoring_support import drive_table, publish_model, write_dtg

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_LOGS = sorted(p for p in (ROOT / "data" / "sample").iterdir() if p.suffix in (".dtg", ".csv"))
KST = dt.timezone(dt.timedelta(hours=9))
NIGHT = dt.datetime(2024, 5, 13, 23, 50, 0, tzinfo=KST)  # drives from 23:50 to 00:10
HAVE_RAY = True
try:
    import ray  # noqa: F401
except ImportError:
    HAVE_RAY = False
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="ray is not installed (pip install 'dtg[ray]')")


# -- a workspace: the sample fleet plus two drives across midnight --------------------------------

def _make_workspace(root: Path) -> Path:
    """models/tiny/v1 and incoming/: the 4 sample logs; vehicle A's night drive split at midnight into
    two logs (the second's first windows need the first's seconds, in the previous date partition);
    vehicle B's night drive in one log (one input, two vehicle-days). Both have a spike at midnight."""
    incoming = root / "incoming"
    incoming.mkdir(parents=True)
    for p in SAMPLE_LOGS:
        shutil.copy(p, incoming / p.name)
    a = drive_table("대구80자1111", n=1200, seed=3, start=NIGHT, spikes=(598,))
    b = drive_table("광주12가3456", n=1200, seed=4, start=NIGHT, spikes=(601, 900))
    write_dtg(incoming / "a_night.dtg", a.slice(0, 600))
    write_dtg(incoming / "a_morning.dtg", a.slice(600))
    write_dtg(incoming / "b_whole.dtg", b)
    fleet = pa.concat_tables([read_source(p).table for p in SAMPLE_LOGS])
    publish_model(root / "models", fleet)  # threshold: 99th percentile of its window errors
    return root


def _cli(ws: Path, *args: str) -> dict:
    import os

    cwd = os.getcwd()
    os.chdir(ws)
    try:
        result = CliRunner().invoke(app, ["score", *args, "--model", "models/tiny/v1", "--device", "cpu", "--json"])
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output + result.stderr
    return json.loads(result.stdout)  # exactly one JSON object on stdout


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return _make_workspace(tmp_path_factory.mktemp("ray") / "template")


@pytest.fixture(scope="module")
def local_run(template, tmp_path_factory) -> tuple[Path, dict]:
    ws = tmp_path_factory.mktemp("ray") / "local"
    shutil.copytree(template, ws)
    return ws, _cli(ws, "incoming")


# -- comparing two workspaces ---------------------------------------------------------------------

def _parquet(out: Path) -> dict[str, pa.Table]:
    return {str(p.relative_to(out)): pq.read_table(p) for p in sorted(out.rglob("*.parquet"))}


def _assert_same_outputs(a: Path, b: Path) -> None:
    """Same files; in each, the same rows, scores within float tolerance, everything else equal."""
    ta, tb = _parquet(a), _parquet(b)
    assert ta.keys() == tb.keys() and ta
    assert not any(Path(k).name.startswith(".") for k in tb)  # no temp file left visible
    for name, x in ta.items():
        y = tb[name]
        assert x.schema == y.schema, name
        for col in x.column_names:
            if pa.types.is_floating(x.schema.field(col).type):
                np.testing.assert_allclose(y.column(col).to_numpy(), x.column(col).to_numpy(), rtol=1e-5,
                                           atol=1e-7, err_msg=f"{name}:{col}")
            else:
                assert x.column(col).equals(y.column(col)), f"{name}:{col}"


def _ledger_rows(ws: Path) -> list[tuple]:
    """Ledger rows with the workspace's own path taken out (identities and outputs are absolute)."""
    here = str(ws.resolve())
    with Ledger(ws / "data" / "ledger.sqlite") as led:
        return [(e.input_hash, e.model, e.path.replace(here, "WS"), e.status, e.rows, e.windows, e.anomalies,
                 e.error, [p.replace(here, "WS") for p in e.outputs]) for e in led.entries()]


def _same_summary(a: dict, b: dict) -> None:
    drop = ("out", "ledger", "anomalies")
    assert {k: v for k, v in a.items() if k not in drop} == {k: v for k, v in b.items() if k not in drop}
    assert len(a["anomalies"]) == len(b["anomalies"])
    for x, y in zip(a["anomalies"], b["anomalies"]):
        assert {**x, "peak_score": 0} == {**y, "peak_score": 0}
        assert y["peak_score"] == pytest.approx(x["peak_score"], rel=1e-5)


def _snapshot(ws: Path) -> dict[str, bytes]:
    out = ws / "data" / "scores"
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def _parquet_bytes(ws: Path) -> dict[str, bytes]:
    """The output files (model.json names the workspace's model folder, so it is left out)."""
    return {k: v for k, v in _snapshot(ws).items() if k.endswith(".parquet")}


# -- with Ray -------------------------------------------------------------------------------------

@needs_ray
def test_ray_engine_scores_logs_like_the_local_engine_and_a_rerun_scores_nothing(template, local_run, tmp_path,
                                                                                 monkeypatch):
    import ray

    local_ws, local = local_run
    assert local["anomalies_total"] > 0 and local["files_new"] == 7
    ws = tmp_path / "ray"
    shutil.copytree(template, ws)
    got = _cli(ws, "incoming", "--engine", "ray", "--workers", "2")  # starts a local Ray (2 CPUs), then stops it
    assert not ray.is_initialized()
    _same_summary(local, got)
    _assert_same_outputs(local_ws / "data" / "scores", ws / "data" / "scores")
    assert _ledger_rows(ws) == _ledger_rows(local_ws)
    # the drive split at midnight: its morning log's first windows reach into the night partition
    morning = pq.read_table(next((ws / "data" / "scores" / "windows").glob("vehicle=*1111/date=2024-05-14/*")))
    assert morning.num_rows == 600 and morning.column("window_start").cast(pa.int64())[0].as_py() < \
        int(dt.datetime(2024, 5, 14, tzinfo=KST).timestamp() * 1000)

    before = _snapshot(ws)

    def no_ray(*a, **k):
        raise AssertionError("Ray was started with nothing to score")

    monkeypatch.setattr(ray, "init", no_ray)
    again = _cli(ws, "incoming", "--engine", "ray")
    assert (again["files_new"], again["files_skipped"], again["windows_scored"]) == (0, 7, 0)
    assert _snapshot(ws) == before


@needs_ray
def test_ray_engine_scores_lake_partitions_with_a_dynamic_threshold_like_the_local_engine(local_run, tmp_path):
    from dtg.scoring import run_score

    summaries, spaces = {}, {}
    for engine in ("local", "ray"):
        ws = spaces[engine] = tmp_path / engine
        shutil.copytree(local_run[0] / "models", ws / "models")
        shutil.copytree(local_run[0] / "data" / "lake", ws / "data" / "lake")
        summaries[engine] = run_score([], ws / "models" / "tiny" / "v1", lake_dir=ws / "data" / "lake",
                                      out_dir=ws / "data" / "scores", ledger_path=ws / "data" / "ledger.sqlite",
                                      quarantine_dir=ws / "data" / "quarantine", threshold="dynamic",
                                      device="cpu", engine=engine,
                                      workers=2 if engine == "ray" else None).to_dict()
    local, got = summaries["local"], summaries["ray"]
    assert local["files_new"] == len(Lake(spaces["local"] / "data" / "lake").partitions()) == 8  # 4 sample vehicle-days, 2 per night drive
    _same_summary(local, got)
    _assert_same_outputs(spaces["local"] / "data" / "scores", spaces["ray"] / "data" / "scores")
    assert _ledger_rows(spaces["ray"]) == _ledger_rows(spaces["local"])


# -- without Ray ----------------------------------------------------------------------------------

def test_engine_ray_without_ray_installed_is_one_line_telling_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["score", "in", "--model", "tiny", "--engine", "ray"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'dtg[ray]'" in lines[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()  # refused before taking the lock or touching the ledger


def test_address_or_workers_without_engine_ray_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for extra in (["--address", "10.0.0.1:6379"], ["--workers", "4"]):
        result = CliRunner().invoke(app, ["score", "in", "--model", "tiny", *extra])
        assert result.exit_code == 1 and "only to --engine ray" in result.stderr


def test_an_unknown_engine_names_the_valid_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["score", "in", "--model", "tiny", "--engine", "spark"])
    assert result.exit_code == 1 and "engine 'spark'" in result.stderr and "local, ray" in result.stderr


def test_ray_init_joins_the_given_address_or_ray_address_else_starts_a_local_ray():
    joined = ray_engine.init_kwargs("10.0.0.1:6379", 8, env={})
    assert joined["address"] == "10.0.0.1:6379" and "num_cpus" not in joined  # a cluster has its own CPUs
    assert ray_engine.init_kwargs(None, None, env={"RAY_ADDRESS": "head:6379"})["address"] == "head:6379"
    assert ray_engine.init_kwargs("given:1", None, env={"RAY_ADDRESS": "env:2"})["address"] == "given:1"
    local = ray_engine.init_kwargs(None, 2, env={})
    assert "address" not in local and local["num_cpus"] == 2 and local["include_dashboard"] is False
    assert local["log_to_driver"] is False
    with pytest.raises(DtgError, match="workers"):
        ray_engine.init_kwargs(None, 0, env={})


class _FakeRay:
    def __init__(self, resources: dict) -> None:
        self.resources = resources

    def cluster_resources(self) -> dict:
        return self.resources


def test_pool_size_follows_workers_cluster_cpus_gpus_and_never_exceeds_the_tasks():
    assert ray_engine.pool_size(_FakeRay({"CPU": 16.0}), None, 100, 0) == 16
    assert ray_engine.pool_size(_FakeRay({"CPU": 16.0}), 3, 100, 0) == 3
    assert ray_engine.pool_size(_FakeRay({"CPU": 16.0}), None, 5, 0) == 5
    assert ray_engine.pool_size(_FakeRay({"CPU": 16.0, "GPU": 2.0}), 8, 100, 1) == 2
    with pytest.raises(DtgError, match="no GPU"):
        ray_engine.pool_size(_FakeRay({"CPU": 16.0}), None, 100, 1)


def test_tasks_are_the_local_engines_vehicle_days_in_its_order():
    night = drive_table("b", n=1200, start=NIGHT)
    ts = night.column("ts").cast(pa.int64()).to_numpy()
    todo = [(types.SimpleNamespace(digest=d), keys) for d, keys in
            (("first", {"b": ts, "a": ts[:10]}), ("empty", {}), ("third", {"a": ts[700:]}))]
    items = ray_engine.vehicle_day_tasks(todo)
    assert [(t["input"], t["chunk"], t["vehicle"], t["date"]) for t in items] == [
        (0, 0, "a", "2024-05-13"), (0, 1, "b", "2024-05-13"), (0, 2, "b", "2024-05-14"), (2, 0, "a", "2024-05-14")]
    assert [t["digest"] for t in items] == ["first"] * 3 + ["third"]
    for t, (_, _, expected) in zip(items[:3], vehicle_days(todo[0][1])):
        assert np.array_equal(np.frombuffer(t["ts"], dtype="<i8"), expected)


@pytest.fixture(scope="module")
def night_lake(tmp_path_factory) -> tuple[Path, Path, pa.Table]:
    root = tmp_path_factory.mktemp("actor")
    drive = drive_table("대구80자1111", n=1200, seed=3, start=NIGHT, spikes=(598,))
    Lake(root / "lake").write(drive)
    return root / "lake", publish_model(root / "models", drive, threshold=0.05), drive


@settings(max_examples=40, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["a", "b", "서울70사1234"]),
                                st.lists(st.integers(1_715_500_000_000, 1_715_900_000_000), max_size=30),
                                max_size=3), max_size=4))
def test_tasks_cover_every_second_of_every_input_once_within_one_korean_day(inputs):
    from dtg.scoring import kst_dates

    todo = [(types.SimpleNamespace(digest=str(i)), {v: np.asarray(ts, np.int64) for v, ts in keys.items()})
            for i, keys in enumerate(inputs)]
    items = ray_engine.vehicle_day_tasks(todo)
    assert [(t["input"], t["chunk"]) for t in items] == sorted((t["input"], t["chunk"]) for t in items)
    for i, (_, keys) in enumerate(todo):
        mine = [t for t in items if t["input"] == i]
        assert [t["chunk"] for t in mine] == list(range(len(mine)))
        for v, ts in keys.items():
            got = [np.frombuffer(t["ts"], "<i8") for t in mine if t["vehicle"] == v]
            assert np.array_equal(np.concatenate(got) if got else np.zeros(0, np.int64), np.sort(ts))
        for t in mine:
            assert set(kst_dates(np.frombuffer(t["ts"], "<i8")).tolist()) == {t["date"]}


def test_the_actor_writes_the_local_engines_chunk_as_temp_files_and_returns_their_names(night_lake, tmp_path):
    from dtg.scoring import write_chunk

    lake_dir, model_dir, drive = night_lake
    thr = FixedThreshold(0.05).fit()
    keys = {"대구80자1111": drive.column("ts").cast(pa.int64()).to_numpy()[600:]}  # the morning only
    todo = [(types.SimpleNamespace(digest="ab" * 32), keys)]
    actor = ray_engine.ChunkScorer(str(model_dir), "cpu", str(lake_dir), thr, 64, str(tmp_path / "ray"), "run1")
    out = actor(pa.Table.from_pylist(ray_engine.vehicle_day_tasks(todo)))
    assert out.schema == ray_engine.RESULT_SCHEMA and out.num_rows == 1
    row = out.to_pylist()[0]
    (expected,) = score_chunks(load_scorer(model_dir, "cpu"), Lake(lake_dir), keys, thr, 64)
    local = write_chunk(expected, tmp_path / "local", "ab" * 32, "tiny_v1", "run1")
    assert row["error"] is None and json.loads(row["moves"]) == [
        [str(Path(t).relative_to(tmp_path / "local")), str(Path(f).relative_to(tmp_path / "local"))] for t, f in local]
    for t, _ in json.loads(row["moves"]):
        assert Path(t).name.startswith(".") and (tmp_path / "ray" / t).read_bytes() == (tmp_path / "local" / t).read_bytes()
    out_ = expected.outputs
    assert (row["rows"], row["windows"], row["anomalies"], row["computed"]) == (
        out_.seconds.num_rows, out_.windows.num_rows, out_.anomalies.num_rows, expected.windows_computed)
    assert row["windows"] == 600 and row["anomalies"] == len(json.loads(row["intervals"])) > 0


def test_the_actor_scores_a_derived_feature_model_like_the_local_engine_across_midnight(night_lake, tmp_path):
    """gps_step/heading_rate read the evening's last seconds (another date partition) as context."""
    from dtg.scoring import write_chunk

    lake_dir, _, drive = night_lake
    model_dir = publish_model(tmp_path / "models", drive, threshold=0.05,
                              features=("speed", "rpm", "gps_step", "heading_rate"))
    thr = FixedThreshold(0.05).fit()
    keys = {"대구80자1111": drive.column("ts").cast(pa.int64()).to_numpy()[600:]}
    actor = ray_engine.ChunkScorer(str(model_dir), "cpu", str(lake_dir), thr, 64, str(tmp_path / "ray"), "run1")
    out = actor(pa.Table.from_pylist(ray_engine.vehicle_day_tasks([(types.SimpleNamespace(digest="cd" * 32), keys)])))
    (expected,) = score_chunks(load_scorer(model_dir, "cpu"), Lake(lake_dir), keys, thr, 64)
    row = out.to_pylist()[0]
    assert row["error"] is None and row["windows"] == expected.outputs.windows.num_rows == 600
    local = write_chunk(expected, tmp_path / "local", "cd" * 32, "tiny_v1", "run1")
    assert [t for t, _ in json.loads(row["moves"])] == [str(Path(t).relative_to(tmp_path / "local")) for t, _ in local]
    for t, _ in json.loads(row["moves"]):
        assert (tmp_path / "ray" / t).read_bytes() == (tmp_path / "local" / t).read_bytes()
    assert set(expected.outputs.seconds.column("top_feature").to_pylist()) & {"gps_step", "heading_rate"}


def test_the_actor_reports_a_bad_vehicle_day_as_an_error_row_not_an_exception(night_lake, tmp_path):
    _, model_dir, drive = night_lake
    no_lat = drive.set_column(drive.schema.get_field_index("lat"), "lat", pa.nulls(drive.num_rows, pa.float64()))
    Lake(tmp_path / "lake").write(no_lat)
    keys = {"대구80자1111": drive.column("ts").cast(pa.int64()).to_numpy()}
    actor = ray_engine.ChunkScorer(str(model_dir), "cpu", str(tmp_path / "lake"), FixedThreshold(0.05).fit(), 64,
                                   str(tmp_path / "out"), "run1")
    todo = [(types.SimpleNamespace(digest="cd" * 32), keys)]
    rows = actor(pa.Table.from_pylist(ray_engine.vehicle_day_tasks(todo))).to_pylist()
    assert len(rows) == 2 and all("lat" in r["error"] and r["moves"] is None for r in rows)
    assert not (tmp_path / "out").exists()


# -- the driver's side, with Ray Data replaced by an in-process stand-in ---------------------------

class _FakeDataset:
    """Ray Data's calls dtg makes, run in this process in order (what preserve_order guarantees)."""

    def __init__(self, batches: list[pa.Table]) -> None:
        self.batches = batches

    def map_batches(self, fn, *, fn_constructor_kwargs, batch_size, batch_format, compute, num_cpus, num_gpus):
        assert batch_format == "pyarrow" and batch_size == 1 and num_cpus == 1 and compute.size >= 1
        actor = fn(**pickle.loads(pickle.dumps(fn_constructor_kwargs)))  # Ray ships them to the actors
        return _FakeDataset([actor(b) for b in self.batches])

    def iter_batches(self, batch_size=None, batch_format="pyarrow"):
        yield from self.batches


def _fake_ray():
    ctx = types.SimpleNamespace(execution_options=types.SimpleNamespace(preserve_order=False),
                                enable_progress_bars=True)
    data = types.ModuleType("ray.data")
    data.DataContext = types.SimpleNamespace(get_current=lambda: ctx)
    data.ActorPoolStrategy = lambda size: types.SimpleNamespace(size=size)

    def from_items(items, override_num_blocks=None):
        assert ctx.execution_options.preserve_order, "results must come back in the local engine's order"
        pickle.dumps(items)
        return _FakeDataset([pa.Table.from_pylist([it]) for it in items])

    data.from_items = from_items
    ray = types.ModuleType("ray")
    ray.data = data
    ray.is_initialized = lambda: True
    ray.cluster_resources = lambda: {"CPU": 2.0}
    return ray, ctx


def test_the_driver_commits_fails_and_skips_inputs_like_the_local_engine(tmp_path, monkeypatch):
    """Inputs in order: a night drive's morning half (context from the night partition), its night
    half, a log whose rows are all quarantined (committed, no outputs), a log whose first vehicle-day
    lacks a feature (failed; its later, good vehicle-day dropped), then a good log."""
    from dtg.scoring import run_score

    template = tmp_path / "template"
    a = drive_table("대구80자1111", n=1200, seed=3, start=NIGHT, spikes=(598,))
    write_dtg(template / "incoming" / "a_morning.dtg", a.slice(600))
    write_dtg(template / "incoming" / "a_night.dtg", a.slice(0, 600))
    (template / "incoming" / "b_all_bad.csv").write_text(
        "vehicle_id,ts,speed,rpm,brake,lat,lon\n부산32바5678,2024-05-14 09:00:00,999,900,0,37.5,127\n")
    rows = ["vehicle_id,ts,speed,rpm,brake,lat,lon"]
    for s in range(60):
        rows.append(f"가11가1111,2024-05-14 10:{s // 60:02d}:{s % 60:02d},{30 + s % 7},{1500 + s},0,,")
        rows.append(f"나22나2222,2024-05-14 10:{s // 60:02d}:{s % 60:02d},{30 + s % 5},{1400 + s},0,"
                    f"{37.5 + s * 1e-4:.5f},127.0")
    (template / "incoming" / "c_mixed.csv").write_text("\n".join(rows) + "\n")
    write_dtg(template / "incoming" / "d_after.dtg",
              drive_table("광주12가3456", n=300, seed=5, start=NIGHT + dt.timedelta(hours=10), spikes=(100,)))
    publish_model(template / "models", a, threshold=0.05)

    summaries, spaces = {}, {}
    for engine in ("local", "ray"):
        ws = spaces[engine] = tmp_path / engine
        shutil.copytree(template, ws)
        if engine == "ray":
            fake, ctx = _fake_ray()
            monkeypatch.setitem(sys.modules, "ray", fake)
            monkeypatch.setitem(sys.modules, "ray.data", fake.data)
        summaries[engine] = run_score([ws / "incoming"], ws / "models" / "tiny" / "v1", lake_dir=ws / "lake",
                                      out_dir=ws / "data" / "scores", ledger_path=ws / "data" / "ledger.sqlite",
                                      quarantine_dir=ws / "quarantine", device="cpu", engine=engine).to_dict()
    local, got = summaries["local"], summaries["ray"]
    assert (local["files_new"], local["files_failed"]) == (4, 1) and local["anomalies_total"] > 0
    assert [e["file"].rsplit("/", 1)[1] for e in local["errors"]] == ["c_mixed.csv"]
    assert "lat" in local["errors"][0]["error"]
    _same_summary({**local, "errors": []}, {**got, "errors": []})
    assert [e["error"] for e in got["errors"]] == [e["error"] for e in local["errors"]]
    _assert_same_outputs(spaces["local"] / "data" / "scores", spaces["ray"] / "data" / "scores")
    ledger = _ledger_rows(spaces["ray"])
    assert ledger == _ledger_rows(spaces["local"])
    assert sorted(r[3] for r in ledger) == ["done"] * 4 + ["failed"]
    assert (ctx.execution_options.preserve_order, ctx.enable_progress_bars) == (False, True)  # restored
    assert not list((spaces["ray"] / "data" / "scores").rglob(".tmp-*"))


def test_a_cluster_that_cannot_be_joined_is_a_one_line_error_naming_it(monkeypatch):
    fake = types.ModuleType("ray")
    fake.data = types.ModuleType("ray.data")
    fake.is_initialized = lambda: False

    def refuse(**kwargs):
        raise ConnectionError("Could not find any running Ray instance.\nPlease specify the address.")

    fake.init = refuse
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.setitem(sys.modules, "ray.data", fake.data)
    with pytest.raises(DtgError) as err:
        with ray_engine.ray_session("10.9.9.9:6379", None):
            pass
    assert str(err.value) == ("field 'address': cannot start or join the Ray cluster at 10.9.9.9:6379: "
                              "Could not find any running Ray instance.")


def test_a_ray_run_that_dies_midway_leaves_nothing_half_done_and_the_next_run_finishes_it(tmp_path, monkeypatch):
    """Ray fails after two vehicle-days (a lost node, a killed driver): the input already committed
    stays, the rest is invisible; the next run — here the local engine — cleans up and scores the
    rest, ending exactly where a clean run ends."""
    from dtg.scoring import run_score

    template = tmp_path / "template"
    drives = [drive_table(v, n=400, seed=k, start=NIGHT + dt.timedelta(hours=k), spikes=(200,))
              for k, v in enumerate(["대구80자1111", "광주12가3456", "부산32바5678"])]
    for k, d in enumerate(drives):
        write_dtg(template / "incoming" / f"log{k}.dtg", d)
    publish_model(template / "models", drives[0], threshold=0.05)

    def score(ws: Path, engine: str) -> dict:
        return run_score([ws / "incoming"], ws / "models" / "tiny" / "v1", lake_dir=ws / "lake",
                         out_dir=ws / "data" / "scores", ledger_path=ws / "data" / "ledger.sqlite",
                         quarantine_dir=ws / "quarantine", device="cpu", engine=engine).to_dict()

    clean, broken = tmp_path / "clean", tmp_path / "broken"
    for ws in (clean, broken):
        shutil.copytree(template, ws)
    score(clean, "local")

    fake, _ = _fake_ray()
    real_iter = _FakeDataset.iter_batches

    def dies_after_two(self, batch_size=None, batch_format="pyarrow"):
        for n, b in enumerate(real_iter(self, batch_size, batch_format)):
            if n == 2:
                raise RuntimeError("node lost")
            yield b

    monkeypatch.setattr(_FakeDataset, "iter_batches", dies_after_two)
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.setitem(sys.modules, "ray.data", fake.data)
    with pytest.raises(RuntimeError, match="node lost"):
        score(broken, "ray")
    visible = [p for p in (broken / "data" / "scores").rglob("*.parquet") if not p.name.startswith(".")]
    assert {p.name.split("-")[1] for p in visible} == {_digest(broken / "incoming" / "log0.dtg")[:20]}
    assert list((broken / "data" / "scores").rglob(".tmp-*"))  # log1's chunk, written but not committed
    assert sorted(r[3] for r in _ledger_rows(broken)) == ["done", "running", "running"]

    again = score(broken, "local")
    assert (again["files_new"], again["files_skipped"], again["recovered"]["interrupted"]) == (2, 1, 2)
    assert again["recovered"]["temp_files_removed"] >= 1
    assert _parquet_bytes(broken) == _parquet_bytes(clean) and _parquet_bytes(clean)
    assert [r[:3] + r[4:] for r in _ledger_rows(broken)] == [r[:3] + r[4:] for r in _ledger_rows(clean)]
    assert [r[3] for r in _ledger_rows(broken)] == ["done"] * 3


def _digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()
