"""WindowSet: built from a canonical table, windows equal source rows, splits, scaler, batches, storage."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dtg import schema
from dtg.errors import DtgError
from dtg.scaling import MinMaxScaler, make_scaler
from dtg.splits import PURGED, SplitSpec
from dtg.windowset import WindowSet, build_window_set

torch.set_num_threads(1)
T0 = 1_700_000_000_000
NAMES = ["TRUCK-7", "bus 9", "부산34나5678", "서울12가3456"]  # already in name order

runs_st = st.lists(st.tuples(st.integers(1, 40), st.integers(2, 6)), min_size=1, max_size=5)
fleet_st = st.lists(runs_st, min_size=1, max_size=3)


def make_table(fleet, seed=0, jitter=False):
    """A canonical table: per vehicle, runs of contiguous seconds (length) separated by gaps (seconds)."""
    rng = np.random.default_rng(seed)
    vid, ts = [], []
    for v, runs in enumerate(fleet):
        t = T0 + v * 100_000_000
        for length, gap in runs:
            ts.append(t + 1000 * np.arange(length))
            vid += [NAMES[v]] * length
            t += 1000 * (length - 1 + gap)
    ts = np.concatenate(ts).astype(np.int64)
    if jitter:
        ts = ts + rng.integers(-300, 300, size=len(ts))
    n = len(ts)
    return pa.table({
        "vehicle_id": pa.array(vid, pa.string()),
        "ts": pa.array(ts, schema.TS_TYPE),
        "speed": pa.array(rng.uniform(0, 120, n), pa.float32()),
        "rpm": pa.array(rng.uniform(600, 3000, n), pa.float32()),
        "brake": pa.array(rng.integers(0, 2, n), pa.int8()),
        "lat": pa.array(35 + rng.uniform(0, 0.5, n), pa.float64()),
        "lon": pa.array(127 + rng.uniform(0, 0.5, n), pa.float64()),
    })


def seg_lengths(fleet, max_gap):
    out = []
    for runs in fleet:
        cur = runs[0][0]
        for (_, gap), (length, _) in zip(runs[:-1], runs[1:]):
            cur = cur + gap - 1 + length if gap <= max_gap else (out.append(cur), length)[1]
        out.append(cur)
    return out


def source_rows(table):
    """{(vehicle, ts ms): (speed, rpm, brake, lat)} of the source table."""
    cols = [table[c].to_numpy() for c in ("speed", "rpm", "brake", "lat")]
    keys = zip(table["vehicle_id"].to_pylist(), table["ts"].cast(pa.int64()).to_numpy().tolist())
    return {k: tuple(np.float32(c[i]) for c in cols) for i, k in enumerate(keys)}


FITTED = MinMaxScaler().fit(np.array([[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]))
"""A fitted scaler, so that property tests may build scoring sets with zero windows."""
PROP = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROP
@given(fleet=fleet_st, size=st.integers(1, 25), stride=st.integers(1, 4), max_gap=st.integers(1, 6))
def test_window_count_equals_the_formula_over_segments(fleet, size, stride, max_gap):
    ws = build_window_set(make_table(fleet), size=size, stride=stride, max_gap=max_gap, scaler=FITTED)
    lengths = seg_lengths(fleet, max_gap)
    assert ws.seg_len.tolist() == lengths
    assert ws.n_windows == sum(max(0, (n - size) // stride + 1) for n in lengths)
    assert ws.summary()["windows"] == ws.n_windows and ws.summary()["segments"] == len(lengths)


@PROP
@given(fleet=fleet_st, size=st.integers(2, 25), max_gap=st.integers(1, 6), jitter=st.booleans())
def test_no_window_crosses_a_gap_or_a_vehicle(fleet, size, max_gap, jitter):
    ws = build_window_set(make_table(fleet, jitter=jitter), size=size, max_gap=max_gap, scaler=FITTED)
    if ws.n_windows == 0:
        return
    rows = ws.starts[:, None] + np.arange(size)[None, :]
    steps = np.diff(ws.ts[rows], axis=1)  # consecutive rows: a step that rounds to one second
    assert np.all((steps >= 500) & (steps < 1500))
    assert np.all(ws.vehicle_idx[rows] == ws.vehicle_idx[rows[:, :1]])
    assert np.all(ws.segment_id[rows] == ws.segment_id[rows[:, :1]])


@PROP
@given(fleet=fleet_st, size=st.integers(1, 20), stride=st.integers(1, 3), max_gap=st.integers(1, 6))
def test_every_window_equals_the_source_rows(fleet, size, stride, max_gap):
    table = make_table(fleet)
    src = source_rows(table)
    ws = build_window_set(table, size=size, stride=stride, max_gap=max_gap, scaler=FITTED)
    raw = ws.windows(np.arange(ws.n_windows), scaled=False)
    for w, s in enumerate(ws.starts):
        for k in range(size):
            r = s + k
            key = (ws.vehicles[ws.vehicle_idx[r]], int(ws.ts[r]))
            if ws.filled[r]:
                assert key not in src
            else:
                assert tuple(raw[w, k]) == src[key]


def test_filled_seconds_are_interpolated_and_brake_holds():
    table = make_table([[(3, 3), (3, 2)]])  # a 3-second step: two missing seconds
    ws = build_window_set(table, size=2, max_gap=3, split=SplitSpec((1.0,)))
    assert ws.filled.tolist() == [False, False, False, True, True, False, False, False]
    speed = table["speed"].to_numpy()
    assert ws.values[3, 0] == pytest.approx(speed[2] + (speed[3] - speed[2]) / 3, rel=1e-5)
    assert ws.values[4, 0] == pytest.approx(speed[2] + 2 * (speed[3] - speed[2]) / 3, rel=1e-5)
    assert ws.values[3, 2] == ws.values[4, 2] == table["brake"].to_numpy()[2]
    assert ws.summary()["rows_filled"] == 2


def test_scaler_is_fitted_on_training_rows_only():
    table = make_table([[(200, 2)], [(150, 2)]], seed=1)
    ws = build_window_set(table, size=10, split=SplitSpec((0.6, 0.2, 0.2)))
    train = ws.starts[ws.split == 0]
    covered = np.unique((train[:, None] + np.arange(10)).ravel())
    assert np.allclose(ws.scaler.data_min_, ws.values[covered].min(axis=0))
    assert np.allclose(ws.scaler.data_max_, ws.values[covered].max(axis=0))
    # extreme values in the test block do not move the scaler
    speed = table["speed"].to_numpy().copy()
    speed[190:200] = 250.0  # last seconds of vehicle 0: its test block
    bumped = table.set_column(2, "speed", pa.array(speed, pa.float32()))
    ws2 = build_window_set(bumped, size=10, split=SplitSpec((0.6, 0.2, 0.2)))
    assert ws2.scaler.to_dict() == ws.scaler.to_dict()
    assert ws2.fingerprint != ws.fingerprint


@pytest.mark.parametrize("name,lo,hi", [("minmax", 0, 1), ("minmax-sym", -1, 1)])
def test_scaled_training_windows_lie_in_the_scaler_range(name, lo, hi):
    ws = build_window_set(make_table([[(300, 2)]]), size=20, scaler=name, split=SplitSpec())
    x = ws.windows(ws.indices("train"))
    assert x.dtype == np.float32 and x.min() >= lo - 1e-6 and x.max() <= hi + 1e-6


def test_no_row_is_shared_by_windows_of_two_splits():
    ws = build_window_set(make_table([[(300, 2), (120, 9)], [(200, 2)]]), size=20, split=SplitSpec())
    owner = np.full(ws.rows, -1)
    for s, k in zip(ws.starts, ws.split):
        if k == PURGED:
            continue
        seen = owner[s:s + 20]
        assert np.all((seen == -1) | (seen == k))
        owner[s:s + 20] = k
    assert set(ws.counts()) == {"train", "val", "test", "purged"} and ws.counts()["purged"] > 0


def test_batches_and_dataset_give_identical_windows():
    ws = build_window_set(make_table([[(120, 2), (60, 5)]]), size=20, split=SplitSpec())
    for target in ("reconstruct", "next"):
        xs, ys = zip(*ws.batches("train", target, batch_size=7, shuffle=False))
        ds = ws.dataset("train", target)
        assert len(ds) == sum(len(x) for x in xs) > 0
        dx = torch.stack([ds[i][0] for i in range(len(ds))])
        dy = torch.stack([ds[i][1] for i in range(len(ds))])
        assert torch.equal(torch.cat(xs), dx) and torch.equal(torch.cat(ys), dy)
        lx, ly = zip(*ws.loader("train", target, batch_size=7, shuffle=False))
        assert torch.equal(torch.cat(lx), dx) and torch.equal(torch.cat(ly), dy)
        assert torch.equal(torch.cat(xs), torch.from_numpy(ws.windows(ws.indices("train", target))))


def test_shuffled_batches_are_a_seeded_permutation_of_the_split():
    ws = build_window_set(make_table([[(200, 2)]]), size=20, split=SplitSpec())
    a = torch.cat([x for x, _ in ws.batches("train", batch_size=16, seed=5)])
    b = torch.cat([x for x, _ in ws.batches("train", batch_size=16, seed=5)])
    c = torch.cat([x for x, _ in ws.batches("train", batch_size=16, seed=6)])
    plain = torch.from_numpy(ws.windows(ws.indices("train")))
    assert torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a, plain)
    key = lambda t: sorted(map(tuple, t[:, 0, :].tolist()))  # noqa: E731
    assert key(a) == key(plain)
    batches = ws.batches("train", batch_size=16, drop_last=True)
    assert len(batches) == len(plain) // 16 and all(len(x) == 16 for x, _ in batches)


def test_next_target_is_the_window_one_second_later():
    ws = build_window_set(make_table([[(80, 2), (30, 4)]]), size=20, split=SplitSpec())
    idx = ws.indices("train", "next")
    assert len(idx) < len(ws.indices("train"))
    x, y = next(iter(ws.batches("train", "next", batch_size=len(idx), shuffle=False)))
    assert torch.equal(y[:, :-1], x[:, 1:])
    last = torch.from_numpy(ws.scaled[ws.starts[idx] + 20])
    assert torch.equal(y[:, -1], last)
    # every window with a next: its target stays in the same segment
    s = ws.starts[idx]
    assert np.all(ws.segment_id[s + 20] == ws.segment_id[s])


def test_save_then_load_round_trips_everything(tmp_path):
    ws = build_window_set(make_table([[(90, 3), (50, 2)], [(70, 2)]]), size=10, stride=2, max_gap=3,
                          split=SplitSpec(by="vehicle", seed=1), scaler="standard")
    ws.save(tmp_path / "set")
    back = WindowSet.load(tmp_path / "set")
    assert isinstance(back.values, np.memmap)
    for name in ("values", "ts", "vehicle_idx", "segment_id", "filled", "starts", "split", "has_next",
                 "seg_row0", "seg_len", "seg_vehicle", "filled_rows"):
        assert np.array_equal(np.asarray(getattr(back, name)), np.asarray(getattr(ws, name))), name
    assert back.vehicles == ws.vehicles and back.features == ws.features
    assert back.summary() == ws.summary()
    assert back.scaler.to_dict() == ws.scaler.to_dict()
    assert np.array_equal(back.windows([0, 3]), ws.windows([0, 3]))
    meta = json.loads((tmp_path / "set" / "meta.json").read_text())
    assert meta["fingerprint"] == ws.fingerprint and meta["counts"]["windows"] == ws.n_windows


def test_saving_again_replaces_the_set_and_leaves_no_temp_folders(tmp_path):
    small = build_window_set(make_table([[(30, 2)]]), size=5, split=SplitSpec())
    big = build_window_set(make_table([[(90, 2)]]), size=5, split=SplitSpec())
    small.save(tmp_path / "set")
    big.save(tmp_path / "set")
    assert "vehicle_idx" not in vars(big) and "filled" not in vars(big)  # written, not kept in memory
    assert WindowSet.load(tmp_path / "set").n_windows == big.n_windows
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]


def test_save_refuses_a_folder_that_is_not_a_window_set(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    ws = build_window_set(make_table([[(30, 2)]]), size=5, split=SplitSpec())
    with pytest.raises(DtgError, match="not a window set"):
        ws.save(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_loading_a_missing_or_damaged_set_is_a_clear_error(tmp_path):
    with pytest.raises(DtgError, match="meta.json missing"):
        WindowSet.load(tmp_path / "nothing")
    ws = build_window_set(make_table([[(30, 2)]]), size=5, split=SplitSpec())
    ws.save(tmp_path / "set")
    (tmp_path / "set" / "runs.npy").write_bytes(b"garbage")
    with pytest.raises(DtgError, match="runs.npy"):
        WindowSet.load(tmp_path / "set")


def test_unknown_feature_lists_the_valid_ones():
    with pytest.raises(DtgError, match=r"unknown feature 'throttle' \(valid: speed, rpm, brake, lat, lon"):
        build_window_set(make_table([[(30, 2)]]), features=("speed", "throttle"), split=SplitSpec())
    with pytest.raises(DtgError, match="twice"):
        build_window_set(make_table([[(30, 2)]]), features="speed,speed", split=SplitSpec())


def test_null_feature_values_become_gaps_and_an_all_null_vehicle_is_dropped():
    table = make_table([[(60, 2)], [(60, 2)]])
    lat = table["lat"].to_numpy().astype(object)
    lat[30] = None  # one missing second in vehicle 0
    lat[60:] = None  # vehicle 1 has no GPS at all
    table = table.set_column(5, "lat", pa.array(list(lat), pa.float64()))
    ws = build_window_set(table, size=10, split=SplitSpec((1.0,)))
    assert ws.vehicles == [NAMES[0]]
    assert ws.seg_len.tolist() == [30, 29]
    assert ws.stats["vehicles_dropped"] == [NAMES[1]] and ws.stats["rows_invalid"] == 61
    filled = build_window_set(table, size=10, max_gap=2, split=SplitSpec((1.0,)))
    assert filled.seg_len.tolist() == [60] and filled.filled_rows.tolist() == [30]
    # speed-only windows keep vehicle 1
    assert len(build_window_set(table, size=10, features=["speed"], split=SplitSpec((1.0,))).vehicles) == 2


def test_a_feature_missing_everywhere_is_a_clear_error():
    with pytest.raises(DtgError, match="no training windows"):
        build_window_set(make_table([[(60, 2)]]), features=("speed", "accel_x"), split=SplitSpec())


def test_unsorted_input_gives_the_same_set_as_sorted():
    table = make_table([[(40, 2), (40, 3)], [(50, 2)]])
    shuffled = table.take(np.random.default_rng(0).permutation(table.num_rows))
    a = build_window_set(table, size=10, split=SplitSpec())
    b = build_window_set(shuffled, size=10, split=SplitSpec())
    assert np.array_equal(a.values, b.values) and np.array_equal(a.starts, b.starts)
    assert a.vehicles == b.vehicles == sorted(NAMES[:2]) and a.fingerprint == b.fingerprint


def test_scoring_set_puts_every_window_in_all_and_uses_the_given_scaler():
    train = build_window_set(make_table([[(100, 2)]], seed=1), size=10, split=SplitSpec())
    with pytest.raises(DtgError, match="fitted scaler"):
        build_window_set(make_table([[(50, 2)]], seed=2), size=10)
    score = build_window_set(make_table([[(50, 2)]], seed=2), size=10, scaler=train.scaler)
    assert score.counts() == {"all": 41, "purged": 0}
    assert score.scaler is train.scaler
    assert len(score.indices("all")) == 41
    with pytest.raises(DtgError, match="built for scoring"):
        score.indices("train")
    with pytest.raises(DtgError, match="fitted on 4 features"):
        build_window_set(make_table([[(50, 2)]]), size=10, features=["speed"], scaler=train.scaler)
    with pytest.raises(DtgError, match="not fitted"):
        build_window_set(make_table([[(50, 2)]]), size=10, scaler=MinMaxScaler())


def test_fingerprint_follows_data_and_parameters():
    table = make_table([[(100, 2)]])
    a = build_window_set(table, size=10, split=SplitSpec())
    assert build_window_set(table, size=10, split=SplitSpec()).fingerprint == a.fingerprint
    assert build_window_set(table, size=12, split=SplitSpec()).fingerprint != a.fingerprint
    assert build_window_set(make_table([[(100, 2)]], seed=9), size=10, split=SplitSpec()).fingerprint != a.fingerprint
    lake = build_window_set(table, size=10, split=SplitSpec(), lake_fingerprint="abc")
    assert lake.lake_fingerprint == "abc" and lake.fingerprint != a.fingerprint


def test_windows_are_not_materialised():
    ws = build_window_set(make_table([[(5000, 2)]]), size=20, split=SplitSpec())
    arrays = [v for v in vars(ws).values() if isinstance(v, np.ndarray)]
    held = sum(a.nbytes for a in arrays)
    assert ws.n_windows > 4000
    assert held < 3 * ws.values.nbytes  # an (n, 20, F) copy would be about 20x
    # nothing per window either: building and batching keep only the segment table and split runs
    for _ in ws.batches("train", "next", batch_size=512):
        pass
    per_window = {"starts", "split", "has_next"} & set(vars(ws))
    assert not per_window and len(ws.runs.lo) < 10 and len(ws.seg_len) == 1


@pytest.mark.parametrize("kw,field", [({"size": 0}, "size"), ({"stride": 0}, "stride"), ({"max_gap": 0}, "max_gap"),
                                      ({"scaler": "robust"}, "scaler")])
def test_bad_parameters_are_clear_errors(kw, field):
    with pytest.raises(DtgError) as err:
        build_window_set(make_table([[(30, 2)]]), split=SplitSpec(), **kw)
    assert err.value.field == field


def test_unknown_split_or_target_is_a_clear_error():
    ws = build_window_set(make_table([[(60, 2)]]), size=10, split=SplitSpec())
    with pytest.raises(DtgError, match="unknown split"):
        ws.indices("validation")
    with pytest.raises(DtgError, match="unknown target"):
        ws.batches("train", target="forecast")
    assert make_scaler("minmax").kind == "minmax"


@PROP
@given(fleet=fleet_st, cuts=st.lists(st.integers(0, 200), max_size=5), max_gap=st.integers(1, 4))
def test_a_table_in_several_chunks_gives_the_same_set_as_one_chunk(fleet, cuts, max_gap):
    table = make_table(fleet)
    bounds = sorted({min(c, table.num_rows) for c in cuts} | {0, table.num_rows})
    pieces = [table.slice(a, b - a) for a, b in zip(bounds[:-1], bounds[1:])]
    chunked = pa.concat_tables(pieces)
    assert chunked.column("vehicle_id").num_chunks == len(pieces)
    a = build_window_set(table, size=5, max_gap=max_gap, scaler=FITTED)
    b = build_window_set(chunked, size=5, max_gap=max_gap, scaler=FITTED)
    assert a.vehicles == b.vehicles and a.seg_len.tolist() == b.seg_len.tolist()
    assert np.array_equal(a.values, b.values) and np.array_equal(a.starts, b.starts)


def test_nan_and_infinite_feature_values_are_missing_seconds():
    table = make_table([[(50, 2)]])
    speed = table["speed"].to_numpy().copy()
    speed[10], speed[30] = np.nan, np.inf
    table = table.set_column(2, "speed", pa.array(speed, pa.float32()))
    ws = build_window_set(table, size=5, scaler=FITTED)
    assert ws.seg_len.tolist() == [10, 19, 19] and ws.stats["rows_invalid"] == 2
    assert np.all(np.isfinite(ws.values))


def test_an_empty_table_gives_an_empty_scoring_set():
    empty = make_table([[(5, 2)]]).slice(0, 0)
    ws = build_window_set(empty, size=5, scaler=FITTED)
    assert ws.rows == 0 and ws.n_windows == 0 and ws.vehicles == []
    assert list(ws.batches("all", shuffle=False)) == []
    with pytest.raises(DtgError, match="no training windows"):
        build_window_set(empty, size=5, split=SplitSpec())


def by_vehicle(table, groups):
    """The table as consecutive tables of whole vehicles (`groups`: vehicles per table)."""
    names = sorted(set(table["vehicle_id"].to_pylist()))
    out, i = [], 0
    for g in groups:
        chunk = names[i:i + g]
        i += g
        if chunk:
            out.append(table.filter(pc.is_in(table["vehicle_id"], pa.array(chunk))))
    return out


@PROP
@given(fleet=fleet_st, groups=st.lists(st.integers(1, 3), min_size=3, max_size=3), max_gap=st.integers(1, 4),
       hint=st.sampled_from([None, 0, 10, 10_000]), by=st.sampled_from(["time", "vehicle"]))
def test_tables_of_whole_vehicles_give_the_same_set_as_one_table(fleet, groups, max_gap, hint, by):
    table = make_table(fleet)
    whole = build_window_set(table, size=5, max_gap=max_gap, scaler=FITTED)
    streamed = build_window_set(iter(by_vehicle(table, groups)), size=5, max_gap=max_gap, scaler=FITTED,
                                rows_hint=hint)
    for name in ("values", "ts", "seg_row0", "seg_len", "seg_vehicle", "filled_rows", "starts", "split", "has_next"):
        assert np.array_equal(getattr(whole, name), getattr(streamed, name)), name
    assert whole.vehicles == streamed.vehicles and whole.fingerprint == streamed.fingerprint


def test_streamed_split_and_scaler_match_the_whole_table():
    table = make_table([[(120, 2)], [(90, 3), (60, 2)], [(150, 2)]], seed=4)
    spec = SplitSpec((0.6, 0.2, 0.2), "vehicle", seed=2)
    whole = build_window_set(table, size=10, split=spec)
    streamed = build_window_set(by_vehicle(table, [1, 1, 1]), size=10, split=spec)
    assert np.array_equal(whole.split, streamed.split)
    assert whole.scaler.to_dict() == streamed.scaler.to_dict()


def test_tables_out_of_vehicle_order_are_refused():
    table = make_table([[(30, 2)], [(30, 2)]])
    first, second = by_vehicle(table, [1, 1])
    with pytest.raises(DtgError, match="ascending vehicle_id order"):
        build_window_set([second, first], size=5, scaler=FITTED)
    with pytest.raises(DtgError, match="ascending vehicle_id order"):
        build_window_set([first, first], size=5, scaler=FITTED)


ids_st = st.lists(st.tuples(st.sampled_from(["", "a", "b", "ab", "ba", "bab", "차량1", "차량2"]), st.integers(1, 9)),
                  min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(runs=ids_st, large=st.booleans(), skip=st.integers(0, 3))
def test_vehicle_runs_are_exact_for_any_order_of_ids(runs, large, skip):
    from dtg.windowset import _long_string_runs, _vehicle_runs

    values = [name for name, k in runs for _ in range(k)]
    arr = pa.array(values, pa.large_string() if large else pa.string()).slice(min(skip, len(values) - 1))
    vals = arr.to_pylist()
    want = [i for i in range(len(vals)) if i == 0 or vals[i] != vals[i - 1]]
    got = _long_string_runs(arr)
    assert got is None or got.tolist() == want
    if len(set(vals)) == len(want):  # grouped (each id in one run): the binary search path must take it
        assert got is not None
    vstart, names = _vehicle_runs(pa.chunked_array([arr]))
    assert vstart.tolist() == want and names.to_pylist() == [vals[i] for i in want]


@settings(max_examples=150, deadline=None)
@given(runs=ids_st, cuts=st.lists(st.integers(0, 60), max_size=3), repeat=st.booleans(), sort=st.booleans())
def test_vehicle_runs_of_dictionary_ids_equal_those_of_the_strings(runs, cuts, repeat, sort):
    """Runs over dictionary indices, in chunks (own dictionaries) and with a dictionary that repeats a
    value (two indices, one id), are the runs of the decoded strings."""
    from dtg.windowset import _vehicle_runs

    values = [name for name, k in runs for _ in range(k)]
    names = sorted(set(values)) if sort else list(dict.fromkeys(values))
    dictionary = names + names if repeat else names
    code = {name: i for i, name in enumerate(names)}
    indices = [code[v] + (len(names) * (i % 2) if repeat else 0) for i, v in enumerate(values)]
    bounds = sorted({0, len(values), *(c for c in cuts if c < len(values))})
    chunks = [pa.DictionaryArray.from_arrays(pa.array(indices[a:b], pa.int32()), pa.array(dictionary))
              for a, b in zip(bounds[:-1], bounds[1:])]
    want = _vehicle_runs(pa.chunked_array([pa.array(values, pa.string())]))
    vstart, ids = _vehicle_runs(pa.chunked_array(chunks))
    assert vstart.tolist() == want[0].tolist() and ids.to_pylist() == want[1].to_pylist()
    assert ids.type == pa.string()


@pytest.mark.parametrize("order", ["sorted", "shuffled"])
def test_a_table_with_dictionary_ids_gives_the_same_set_as_string_ids(order):
    table = make_table([[(40, 3), (25, 2)], [(30, 1)], [(50, 4)]], seed=3, jitter=True)
    if order == "shuffled":
        table = table.take(pa.array(np.random.default_rng(0).permutation(table.num_rows)))
    coded = table.set_column(0, "vehicle_id", pc.dictionary_encode(table["vehicle_id"]))
    want = build_window_set(table, size=8, max_gap=3, split=SplitSpec())
    got = build_window_set(coded, size=8, max_gap=3, split=SplitSpec())
    for name in ("values", "ts", "starts", "split", "has_next", "seg_row0", "seg_len", "seg_vehicle", "filled_rows"):
        assert np.array_equal(getattr(want, name), getattr(got, name)), name
    assert want.vehicles == got.vehicles and want.fingerprint == got.fingerprint
    assert want.scaler.to_dict() == got.scaler.to_dict()


@PROP
@given(fleet=fleet_st, size=st.integers(1, 12), stride=st.integers(1, 3), scaler=st.sampled_from(["minmax", "minmax-sym"]),
       by=st.sampled_from(["time", "vehicle"]))
def test_min_max_scaler_from_block_extrema_equals_the_scaler_fitted_on_the_training_rows(fleet, size, stride, scaler,
                                                                                         by):
    import dtg.segments as segments

    table = make_table(fleet, seed=len(fleet))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(segments, "BLOCK", 8)  # whole blocks inside the training rows, and partly covered ones
        mp.setattr(segments, "_FOLD", 4)
        try:
            ws = build_window_set(table, size=size, stride=stride, split=SplitSpec((0.6, 0.2, 0.2), by), scaler=scaler)
        except DtgError:
            return  # no training windows
    train = ws.starts[ws.split == 0]
    covered = np.unique((train[:, None] + np.arange(size)).ravel())
    assert ws.scaler.to_dict() == make_scaler(scaler).fit(np.asarray(ws.values)[covered]).to_dict()


def test_nan_in_a_whole_block_is_a_missing_second(monkeypatch):
    import dtg.segments as segments

    monkeypatch.setattr(segments, "BLOCK", 8)
    monkeypatch.setattr(segments, "_FOLD", 4)
    table = make_table([[(50, 2)]])
    lat = table["lat"].to_numpy().copy()
    lat[20] = np.nan
    ws = build_window_set(table.set_column(5, "lat", pa.array(lat)), size=5, scaler=FITTED)
    assert ws.seg_len.tolist() == [20, 29] and ws.stats["rows_invalid"] == 1
    assert np.all(np.isfinite(ws.values))


@PROP
@given(fleet=fleet_st, size=st.integers(1, 12), stride=st.integers(1, 15), max_gap=st.integers(1, 4))
def test_training_row_ranges_are_the_maximal_runs_of_rows_covered_by_training_windows(fleet, size, stride, max_gap):
    from dtg.splits import assign_splits
    from dtg.windowset import _train_rows

    ws = build_window_set(make_table(fleet), size=size, stride=stride, max_gap=max_gap, scaler=FITTED)
    runs = assign_splits(ws.index, ws.seg_vehicle, len(ws.vehicles), SplitSpec((0.6, 0.2, 0.2)))
    covered = np.zeros(ws.rows + 1, bool)
    for s in ws.starts[runs.split() == 0]:
        covered[s:s + size] = True
    edge = np.diff(np.concatenate(([0], covered.astype(np.int8))))
    begins, ends = _train_rows(ws.index, runs)
    assert begins.tolist() == np.flatnonzero(edge == 1).tolist()
    assert ends.tolist() == np.flatnonzero(edge == -1).tolist()


def test_a_set_of_another_format_or_with_runs_not_covering_the_windows_is_refused(tmp_path):
    ws = build_window_set(make_table([[(60, 2), (40, 3)]]), size=5, split=SplitSpec())
    ws.save(tmp_path / "set")
    meta_path = tmp_path / "set" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "format_version": 1}))
    with pytest.raises(DtgError, match=r"unsupported window set format 1 \(this dtg reads 2\); run `dtg window`"):
        WindowSet.load(tmp_path / "set")
    meta_path.write_text(json.dumps(meta))
    runs = np.load(tmp_path / "set" / "runs.npy")
    runs[-1, 0] = ws.n_windows  # a run starting past the last window
    np.save(tmp_path / "set" / "runs.npy", runs)
    with pytest.raises(DtgError, match="runs do not cover"):
        WindowSet.load(tmp_path / "set")
