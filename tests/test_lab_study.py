"""The optimizer study: the classic outcomes (SGD crawls in the valley, stalls at the saddle) and its mechanics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dtg.errors import DtgError
from dtg.lab import study
from dtg.lab.functions import FUNCTIONS, beale, rosenbrock, saddle
from dtg.nn import optimizers

torch.set_num_threads(1)
STEPS = study.DEFAULT_STEPS


@pytest.fixture(scope="module")
def valley_runs():
    runs = study.run_study([FUNCTIONS["valley"]], steps=STEPS, names=["sgd", "momentum", "adam"])
    return {r.optimizer: r for r in runs}


@pytest.fixture(scope="module")
def saddle_runs():
    return {r.optimizer: r for r in study.run_study([FUNCTIONS["saddle"]], steps=STEPS)}


def test_functions_have_their_known_minima_and_saddle():
    t = lambda *v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    assert beale(t(3.0), t(0.5)).item() == 0.0
    assert rosenbrock(t(1.0), t(1.0)).item() == 0.0
    assert saddle(t(0.0), t(0.0)).item() == 0.0
    for fn in FUNCTIONS.values():
        if fn.minimum is not None:
            assert fn.fn(*t(*fn.minimum)).item() == 0.0
            assert fn.fn(*t(*fn.start)).item() > 1.0


def test_plain_sgd_crawls_in_the_valley_where_momentum_and_adam_arrive(valley_runs):
    sgd = valley_runs["sgd"].summary()
    assert not sgd["diverged"] and sgd["steps_to_target"] is None
    assert sgd["distance_to_minimum"] > 0.5  # still far down the valley floor after 500 steps
    for name in ("momentum", "adam"):
        other = valley_runs[name].summary()
        assert other["steps_to_target"] is not None and other["distance_to_minimum"] < 0.05
        assert sgd["final_loss"] > 100 * other["final_loss"]


def test_plain_sgd_stalls_at_the_saddle_while_every_other_optimizer_escapes(saddle_runs):
    sgd = saddle_runs["sgd"]
    assert abs(sgd.final[1]) < 0.05 and sgd.final_loss > 0  # still on the ridge above the saddle
    assert sgd.steps_to_target is None and not sgd.escaped
    for name, run in saddle_runs.items():
        if name == "sgd":
            continue
        assert run.steps_to_target is not None, name
        assert abs(run.final[1]) > 100 * abs(sgd.final[1]), name
        assert run.final_loss < -1 and not run.diverged, name


def test_a_run_records_every_point_and_its_loss_from_the_start(valley_runs):
    run = valley_runs["momentum"]
    fn = FUNCTIONS["valley"]
    assert run.path.shape == (STEPS + 1, 2) and run.losses.shape == (STEPS + 1,)
    np.testing.assert_array_equal(run.path[0], fn.start)
    recomputed = fn.fn(torch.from_numpy(run.path[:, 0]), torch.from_numpy(run.path[:, 1])).numpy()
    np.testing.assert_allclose(run.losses, recomputed, rtol=1e-12)


def test_steps_to_target_is_the_first_step_at_or_below_the_target(valley_runs):
    run = valley_runs["adam"]
    below = np.flatnonzero(run.losses <= FUNCTIONS["valley"].target)
    assert run.steps_to_target == below[0]


def test_a_run_follows_the_registry_optimizer_exactly():
    fn = FUNCTIONS["beale"]
    run = study.run_optimizer(fn, "nadam", 0.05, 20)
    theta = torch.tensor(fn.start, dtype=torch.float64, requires_grad=True)
    opt = optimizers.build("nadam", [theta], lr=0.05)
    for _ in range(20):
        opt.zero_grad()
        fn.fn(theta[0], theta[1]).backward()
        opt.step()
    np.testing.assert_array_equal(run.final, theta.detach().numpy())


def test_too_large_a_rate_is_reported_as_diverged_and_the_run_stops():
    run = study.run_optimizer(FUNCTIONS["valley"], "sgd", 0.05, STEPS)
    s = run.summary()
    assert s["diverged"] and not s["escaped"] and s["steps_run"] < STEPS and s["steps_to_target"] is None


def test_leaving_the_saddle_is_an_escape_not_a_divergence():
    run = study.run_optimizer(FUNCTIONS["saddle"], "adam", 0.5, STEPS)
    assert run.escaped and not run.diverged and len(run.path) - 1 < STEPS
    assert math.hypot(*run.final) > FUNCTIONS["saddle"].radius


def test_every_optimizer_runs_from_the_same_start_with_the_study_rates():
    runs = study.run_study([FUNCTIONS["beale"]], steps=3)
    assert [r.optimizer for r in runs] == list(optimizers.OPTIMIZERS)
    assert all(np.array_equal(r.path[0], FUNCTIONS["beale"].start) for r in runs)
    assert {r.optimizer: r.lr for r in runs} == study.LEARNING_RATES


def test_rate_overrides_are_checked_and_applied():
    assert study.learning_rates({"Adam": 0.01})["adam"] == 0.01
    with pytest.raises(DtgError, match="unknown optimizer 'adamw'"):
        study.learning_rates({"adamw": 0.1})
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(DtgError) as err:
            study.learning_rates({"sgd": bad})
        assert err.value.field == "lr"


def test_functions_resolve_by_name_or_all_and_unknown_names_are_listed():
    assert [f.name for f in study.resolve_functions("all")] == ["beale", "saddle", "valley"]
    assert [f.name for f in study.resolve_functions("Valley")] == ["valley"]
    with pytest.raises(DtgError, match=r"unknown function 'bowl' \(valid: beale, saddle, valley\)"):
        study.resolve_functions("bowl")


def test_steps_must_be_positive():
    with pytest.raises(DtgError) as err:
        study.run_study([FUNCTIONS["beale"]], steps=0)
    assert err.value.field == "steps"


def test_tuning_score_is_infinite_for_a_diverged_run_and_mean_log_loss_otherwise():
    fn = FUNCTIONS["valley"]
    ok = study.run_optimizer(fn, "sgd", 0.001, 30)
    bad = study.run_optimizer(fn, "sgd", 0.05, 30)
    assert study.tuning_score([ok, bad]) == math.inf
    assert study.tuning_score([ok]) == pytest.approx(math.log10(ok.final_loss))


def test_tuning_picks_the_grid_rate_with_the_best_score():
    grid = (1e-4, 1e-3, 0.05)
    got = study.tune_learning_rates(["sgd"], grid=grid, steps=60)
    scores = {lr: study.tuning_score(study.run_optimizer(FUNCTIONS[f], "sgd", lr, 60)
                                     for f in study.TUNING_FUNCTIONS) for lr in grid}
    assert got == {"sgd": min(scores, key=scores.get)} == {"sgd": 1e-3}


@pytest.mark.slow
def test_the_study_rates_are_what_tuning_on_the_grid_gives():
    # ~40 s: reruns the whole grid search that chose LEARNING_RATES.
    assert study.tune_learning_rates() == study.LEARNING_RATES


def test_table_renders_as_csv_and_markdown(valley_runs):
    rows = [r.summary() for r in valley_runs.values()]
    csv_text = study.to_csv(rows)
    lines = csv_text.strip().splitlines()
    assert lines[0].split(",") == study.COLUMNS and len(lines) == 1 + len(rows)
    assert ",sgd,0.002," in lines[1] and lines[1].split(",")[study.COLUMNS.index("steps_to_target")] == ""
    md = study.to_markdown(rows)
    assert md.count("\n") == 2 + len(rows)
    assert "| valley | sgd | 0.002 |" in md and "never" in md and "| reached |" in md
