"""`dtg inject`: labels match exactly what changed (diff of original vs injected); determinism."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet  # noqa: F401  (pa.parquet)
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dtg.errors import DtgError
from dtg.inject import FAULTS, GUARD_S, SPECS, inject, parse_faults
from dtg.schema import SCHEMA, TS_TYPE, conform

T0 = 1_715_558_400_000  # 2024-05-13 09:00 KST


def drive_log(n: int = 3600, vid: str = "서울70사1234", seed: int = 1, t0: int = T0, gaps: tuple = ()) -> pa.Table:
    """A plausible 1 Hz drive: speed/RPM following a smooth random profile, a GPS track, brake on decel."""
    rng = np.random.default_rng(seed)
    speed = np.clip(np.cumsum(rng.normal(0, 1.5, n)) + 50, 0, 110).round().astype(np.float32)
    rpm = (700 + speed * 25 + rng.normal(0, 30, n)).round().astype(np.float32)
    brake = (np.diff(speed, prepend=speed[0]) < -1).astype(np.int8)
    lat = 37.5 + np.cumsum(speed) / 3.6 / 111_320.0 * 0.6
    lon = 127.0 + np.cumsum(speed) / 3.6 / 88_000.0 * 0.8
    ts = t0 + np.arange(n, dtype=np.int64) * 1000
    for at, length in gaps:
        ts[at:] += length * 1000
    return conform(pa.table({
        "vehicle_id": [vid] * n, "ts": pa.array(ts).cast(TS_TYPE), "speed": speed, "rpm": rpm, "brake": brake,
        "lat": lat.round(6), "lon": lon.round(6), "source_file": ["x.dtg"] * n,
        "source_row": np.arange(2, n + 2, dtype=np.int64)}))


def diff(orig: pa.Table, faulty: pa.Table) -> tuple[dict, dict]:
    """Per vehicle: ts (ms) of rows that changed, and of rows removed."""
    changed: dict[str, set] = {}
    removed: dict[str, set] = {}
    o = {(r["vehicle_id"], r["ts"]): r for r in orig.to_pylist()}
    f = {(r["vehicle_id"], r["ts"]): r for r in faulty.to_pylist()}
    assert set(f) <= set(o)
    for key, row in o.items():
        t = int(pa.scalar(key[1], TS_TYPE).cast(pa.int64()).as_py())
        if key not in f:
            removed.setdefault(key[0], set()).add(t)
        elif f[key] != row:
            changed.setdefault(key[0], set()).add(t)
    return changed, removed


def spans(labels: pa.Table):
    for r in labels.to_pylist():
        s = int(pa.scalar(r["start"], TS_TYPE).cast(pa.int64()).as_py())
        e = int(pa.scalar(r["end"], TS_TYPE).cast(pa.int64()).as_py())
        yield r["vehicle_id"], s, e, r["type"]


def assert_labels_match_changes(orig: pa.Table, faulty: pa.Table, labels: pa.Table) -> None:
    changed, removed = diff(orig, faulty)
    covered_c: dict[str, set] = {}
    covered_r: dict[str, set] = {}
    for vid, s, e, kind in spans(labels):
        c, r = changed.get(vid, set()), removed.get(vid, set())
        inside_c = {t for t in c if s <= t <= e}
        inside_r = {t for t in r if s <= t <= e}
        if kind == "dropout":
            assert not inside_c, "a dropout changes no kept row"
            assert inside_r == set(range(s, e + 1000, 1000)), "a dropout removes every row it labels"
        else:
            assert not inside_r
            assert s in inside_c and e in inside_c, "a label starts and ends at a changed row"
        covered_c.setdefault(vid, set()).update(inside_c)
        covered_r.setdefault(vid, set()).update(inside_r)
    for vid in set(changed) | set(removed):
        assert changed.get(vid, set()) <= covered_c.get(vid, set()), "a change outside every label"
        assert removed.get(vid, set()) <= covered_r.get(vid, set()), "a removal outside every label"


@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_type_changes_exactly_what_its_labels_say(fault):
    orig = drive_log()
    faulty, labels = inject(orig, (fault,), rate=6, seed=3)
    assert labels.num_rows >= 3
    assert set(labels.column("type").to_pylist()) == {fault}
    assert_labels_match_changes(orig, faulty, labels)


def test_all_faults_together_over_several_vehicles_with_gaps():
    orig = pa.concat_tables([drive_log(2400, "A", 1, gaps=((1000, 50),)), drive_log(3000, "B", 2),
                             drive_log(1800, "C", 3, gaps=((300, 5), (900, 600)))])
    faulty, labels = inject(orig, FAULTS, rate=10, seed=7)
    assert set(labels.column("type").to_pylist()) == set(FAULTS)
    assert_labels_match_changes(orig, faulty, labels)
    assert faulty.schema == SCHEMA


def test_faults_keep_a_guard_between_them_and_never_overlap():
    faulty, labels = inject(drive_log(), FAULTS, rate=20, seed=5)
    rows = sorted(spans(labels), key=lambda r: r[1])
    for a, b in zip(rows, rows[1:]):
        assert b[1] - a[2] > GUARD_S * 1000


def test_fault_durations_stay_within_their_specs():
    _, labels = inject(drive_log(), FAULTS, rate=20, seed=11)
    for _, s, e, kind in spans(labels):
        assert (e - s) // 1000 + 1 <= SPECS[kind].max_s


def test_dropout_leaves_a_gap_inside_a_segment():
    orig = drive_log(1200)
    faulty, labels = inject(orig, ("dropout",), rate=3, seed=2)
    ts = faulty.column("ts").cast(pa.int64()).to_numpy()
    gaps = np.flatnonzero(np.diff(ts) > 1000)
    assert len(gaps) == labels.num_rows
    for (_, s, e, _), g in zip(spans(labels), gaps):
        assert (ts[g], ts[g + 1]) == (s - 1000, e + 1000)


def test_same_seed_same_faults_and_another_seed_others():
    orig = drive_log()
    a = inject(orig, FAULTS, rate=8, seed=42)
    b = inject(orig, FAULTS, rate=8, seed=42)
    c = inject(orig, FAULTS, rate=8, seed=43)
    assert a[0].equals(b[0]) and a[1].equals(b[1])
    assert not a[1].equals(c[1])


def test_a_vehicles_faults_do_not_depend_on_the_other_vehicles_in_the_table():
    a, b = drive_log(1800, "A", 1), drive_log(1800, "B", 2)
    _, alone = inject(a, FAULTS, rate=8, seed=9)
    _, together = inject(pa.concat_tables([b, a]), FAULTS, rate=8, seed=9)
    assert together.filter(pa.compute.equal(together["vehicle_id"], "A")).equals(alone)


def test_quantized_faults_stay_on_the_dtg_grid():
    orig = drive_log()
    faulty, labels = inject(orig, ("drift", "spike", "gps_jump"), rate=10, seed=4, quantize=True)
    for col, scale in (("speed", 1), ("rpm", 1), ("lat", 1e6), ("lon", 1e6)):
        x = faulty.column(col).to_numpy() * scale
        assert np.allclose(x, np.round(x), atol=1e-6)
    assert_labels_match_changes(orig, faulty, labels)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(60, 1500), rate=st.floats(0.5, 40),
       faults=st.sets(st.sampled_from(FAULTS), min_size=1))
def test_labels_match_changes_for_any_seed_length_and_rate(seed, n, rate, faults):
    orig = drive_log(n, seed=seed % 1000)
    faulty, labels = inject(orig, tuple(sorted(faults)), rate=rate, seed=seed)
    assert_labels_match_changes(orig, faulty, labels)


def test_unknown_fault_name_lists_the_valid_ones():
    with pytest.raises(DtgError, match="brake_stuck"):
        parse_faults("stuck,sticky")
    assert parse_faults(" spike, drift,spike") == ("spike", "drift")


def test_rate_must_be_positive():
    with pytest.raises(DtgError):
        inject(drive_log(100), FAULTS, rate=0)


# ---------------------------------------------------------------- command line, real sample files


@pytest.mark.parametrize("fmt", ["parquet", "csv", "dtg"])
def test_cli_copies_sample_logs_and_labels_match_the_reread_copy(tmp_path, fmt):
    import json
    from pathlib import Path

    from typer.testing import CliRunner

    from dtg.cli import app
    from dtg.readers import read_source

    src = Path(__file__).resolve().parents[1] / "data" / "sample" / "서울70사1234_20240513.dtg"
    res = CliRunner().invoke(app, ["inject", str(src), "--out", str(tmp_path / "out"), "--rate", "20",
                                   "--seed", "1", "--format", fmt, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["labels_total"] >= 7 and out["files"] == 1
    orig = read_source(src).table
    copy = read_source(out["files_written"][0]).table
    labels = pa.parquet.read_table(out["labels_file"])
    keep = ["vehicle_id", "ts", "speed", "rpm", "brake", "lat", "lon"]
    assert_labels_match_changes(orig.select(keep), copy.select(keep), labels)
    again = CliRunner().invoke(app, ["inject", str(src), "--out", str(tmp_path / "again"), "--rate", "20",
                                     "--seed", "1", "--format", fmt, "--json"])
    assert pa.parquet.read_table(json.loads(again.stdout)["labels_file"]).drop_columns(["file"]).equals(
        labels.drop_columns(["file"]))


def test_cli_unknown_fault_is_a_one_line_error(tmp_path):
    from pathlib import Path

    from typer.testing import CliRunner

    from dtg.cli import app

    src = Path(__file__).resolve().parents[1] / "data" / "sample"
    res = CliRunner().invoke(app, ["inject", str(src), "--out", str(tmp_path), "--faults", "wobble"])
    assert res.exit_code == 1 and "wobble" in res.stderr and "Traceback" not in res.stderr
