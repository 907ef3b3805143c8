"""Training: one loop from a window source to a trained model.

Read it top to bottom like nanoGPT's train.py: set up (seed, model, optimizer, schedule; or resume
all of that from the checkpoint), then per epoch: shuffled mini-batches → forward → loss → backward
→ clip → step; validate; schedule; early-stopping bookkeeping; checkpoint. At the end the best
weights are restored and the validation windows scored (their p99 becomes the model's threshold).

Repeatability: `seed` fixes torch, numpy and python's RNGs and the model's initial weights; epoch
e's shuffle uses seed `epoch_seed(seed, e)`; deterministic algorithms are on. The checkpoint holds
everything the next epoch depends on (weights, optimizer, schedule, RNG states, history,
early-stopping state), so a resumed run equals the uninterrupted one bit for bit on the CPU.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator, Protocol, Sequence

import numpy as np
import torch

from dtg.atomic import atomic_path
from dtg.errors import DtgError
from dtg.models import DEFAULT_MODEL, WindowModel, build, window_errors
from dtg.models.base import TARGETS, objective

SCHEDULES = ("none", "cosine", "step", "plateau")
EVAL_BATCH = 4096          # validation batch: independent of the training batch size, results too
CHECKPOINT = "checkpoint.pt"
THRESHOLD_PERCENTILE = 99.0


class WindowSource(Protocol):
    """What training reads: a window set (`dtg.windowset.WindowSet`) or any look-alike."""

    features: Sequence[str]
    size: int

    def batches(self, split: str, target: str, batch_size: int, shuffle: bool,
                seed: int) -> Iterable[tuple[torch.Tensor, torch.Tensor]]: ...

    def indices(self, split: str, target: str) -> np.ndarray: ...


@dataclass
class TrainConfig:
    """Every training setting: what `[train]` in a pipeline file and `dtg train` flags set.

    `None` for a model option means the model's own default; `lr=None` the optimizer's default
    (e.g. Adam 1e-3); `batch_size=0` means all training windows in one batch; `patience=0` turns
    early stopping off (the best epoch's weights are kept either way); `clip=0` no clipping;
    `threads=0` torch's default number of CPU threads (small LSTMs often run fastest on 1).
    """

    model: str = DEFAULT_MODEL
    optimizer: str = "adam"
    loss: str = "mse"
    epochs: int = 20
    batch_size: int = 64
    lr: float | None = None
    hidden: int | None = None
    layers: int | None = None
    latent: int | None = None
    dropout: float | None = None
    activation: str | None = None
    patience: int = 5
    clip: float = 0.0
    schedule: str = "none"
    seed: int = 0
    device: str = "auto"
    threads: int = 0

    MODEL_KEYS: ClassVar[tuple[str, ...]] = ("hidden", "layers", "latent", "dropout", "activation")
    # Settings that may change between an interrupted run and its resume without changing its result.
    # (Bit-for-bit equality with the uninterrupted run needs the same device and thread count.)
    RESUMABLE_CHANGES: ClassVar[tuple[str, ...]] = ("device", "threads")

    def model_options(self) -> dict[str, Any]:
        """The model options that were set (the rest take the model's defaults)."""
        return {k: getattr(self, k) for k in self.MODEL_KEYS if getattr(self, k) is not None}

    def check(self) -> "TrainConfig":
        """Raise a DtgError naming the first invalid setting; return self."""
        for name in ("epochs",):
            _require(getattr(self, name), name, lambda v: _is_int(v) and v >= 1, "a positive integer")
        for name in ("batch_size", "patience", "seed", "threads"):
            _require(getattr(self, name), name, lambda v: _is_int(v) and v >= 0, "an integer >= 0")
        _require(self.lr, "lr", lambda v: v is None or (_is_num(v) and 0 < v < math.inf), "a positive number")
        _require(self.clip, "clip", lambda v: _is_num(v) and 0 <= v < math.inf, "a number >= 0")
        _require(self.schedule, "schedule", lambda v: v in SCHEDULES, f"one of {', '.join(SCHEDULES)}")
        return self

    @classmethod
    def from_dict(cls, options: dict[str, Any]) -> "TrainConfig":
        """A config from plain data (TOML, a checkpoint); an unknown key is a DtgError naming it."""
        valid = [f.name for f in dataclasses.fields(cls)]
        for key in options:
            if key not in valid:
                raise DtgError(f"unknown training setting '{key}' (valid: {', '.join(valid)})", field=key)
        if "loss" not in options and _target_of(options.get("model", DEFAULT_MODEL)) not in TARGETS:
            options = {**options, "loss": "cross-entropy"}  # a classifier's only sensible loss
        return cls(**options).check()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse_batch_size(value: int | str) -> int:
    """A batch size from a flag or TOML: a whole number >= 1, or `all` (one batch: 0)."""
    if isinstance(value, str):
        if value.strip().lower() == "all":
            return 0
        try:
            value = int(value)
        except ValueError:
            raise DtgError(f"must be a whole number or 'all', got {value!r}", field="batch_size") from None
    if not _is_int(value) or value < 0:
        raise DtgError(f"must be a whole number or 'all', got {value!r}", field="batch_size")
    return value


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _require(value: Any, name: str, ok: Any, what: str) -> None:
    if not ok(value):
        raise DtgError(f"must be {what}, got {value!r}", field=name)


@dataclass
class Evaluation:
    """A model's loss on one split, and (when asked) each window's error via `window_errors`."""

    loss: float
    windows: int
    scores: np.ndarray | None = None          # (windows,)
    per_feature: np.ndarray | None = None     # (windows, F)


@dataclass
class TrainResult:
    """What a run produced: the model with its best weights, the history, and the metrics."""

    model: WindowModel
    config: TrainConfig
    history: list[dict[str, Any]]
    best_epoch: int                 # 1-based; 0 when no epoch ran
    epochs_run: int
    stopped_early: bool
    completed: bool                 # False when `stop_after` ended the call before the last epoch
    monitor: str                    # the split early stopping watched: "val" (or "train" when val is empty)
    validation: Evaluation          # best weights on the monitored split, with window scores
    test: Evaluation | None = None
    seconds: float = 0.0
    train_windows: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def train_loss(self) -> float:
        return self.history[self.best_epoch - 1]["train_loss"] if self.best_epoch else math.nan

    @property
    def val_loss(self) -> float:
        return self.validation.loss

    @property
    def threshold(self) -> float:
        return default_threshold(self.validation.scores)


def default_threshold(scores: np.ndarray) -> float:
    """A model's default anomaly threshold: the 99th percentile of its validation window scores."""
    return float(np.percentile(np.asarray(scores, dtype=np.float64), THRESHOLD_PERCENTILE))


def epoch_seed(seed: int, epoch: int) -> int:
    """The shuffle seed of 0-based `epoch`: a different, fixed order every epoch."""
    return (seed * 1_000_003 + epoch) % (2**63)


def seed_everything(seed: int) -> None:
    """Fix python's, numpy's and torch's (CPU and CUDA) random generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def deterministic(threads: int = 0) -> Iterator[None]:
    """Deterministic torch algorithms (and `threads` CPU threads when > 0) for the duration, restored after."""
    before_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    before = torch.are_deterministic_algorithms_enabled()
    before_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    before_fill = torch.utils.deterministic.fill_uninitialized_memory
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # needed by cuBLAS for determinism
    torch.use_deterministic_algorithms(True, warn_only=True)
    # Filling every new tensor with NaN (a debugging aid that deterministic mode turns on) costs ~10 %
    # of a small LSTM's step and changes no result of a correct kernel.
    torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=before_warn)
        torch.utils.deterministic.fill_uninitialized_memory = before_fill
        torch.set_num_threads(before_threads)


def make_scheduler(name: str, optimizer: torch.optim.Optimizer, epochs: int, patience: int) -> Any:
    """The per-epoch LR schedule `name` (`none` → None)."""
    if name == "none":
        return None
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1)
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=max(1, patience // 2))
    raise DtgError(f"unknown schedule '{name}' (valid: {', '.join(SCHEDULES)})", field="schedule")


@torch.inference_mode()
def evaluate(model: WindowModel, source: WindowSource, split: str, loss: str, device: torch.device,
             *, scores: bool = False, batch_size: int = EVAL_BATCH) -> Evaluation:
    """The model's mean loss over `split` (in eval mode); with `scores`, each window's errors too."""
    loss_fn, output_fn = objective(loss, model.target)
    model.eval()
    total, n = 0.0, 0
    score_parts, feature_parts = [], []
    for x, y in source.batches(split, model.target, batch_size, False, 0):
        x, y = x.to(device), y.to(device)
        out = model(x)
        total += loss_fn(out, y).item() * len(x)
        n += len(x)
        if scores:
            s, f = window_errors(output_fn(out), y) if model.target in TARGETS else class_errors(out, y)
            score_parts.append(s.cpu().numpy())
            feature_parts.append(f.cpu().numpy())
    width = len(source.features)
    return Evaluation(
        loss=total / n if n else math.nan,
        windows=n,
        scores=np.concatenate(score_parts) if score_parts else (np.zeros(0, np.float32) if scores else None),
        per_feature=np.concatenate(feature_parts) if feature_parts else (np.zeros((0, width), np.float32)
                                                                         if scores else None),
    )


def class_errors(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A classifier's per-window score (its cross-entropy) and no per-feature errors ((B, 0))."""
    ce = torch.nn.functional.cross_entropy(logits, y.long(), reduction="none")
    return ce, ce.new_zeros((len(ce), 0))


def train(source: WindowSource, config: TrainConfig, run_dir: str | Path | None = None, *,
          resume: bool = False, progress: bool | str = False, stop_after: int | None = None) -> TrainResult:
    """Train `config.model` on `source`; checkpoint each epoch into `run_dir` (when given).

    `resume` continues from `run_dir`'s checkpoint (same settings and data required).
    `progress`: "bar" (True), "lines" (one stderr line per epoch) or "off" (False).
    `stop_after` ends this call after that many epochs as if interrupted (the checkpoint stays),
    for time-boxed runs and for testing resume. A checkpoint is never resumed on other windows
    (the source's `fingerprint` must match).
    """
    from dtg.device import resolve_device
    from dtg.nn import optimizers

    config.check()
    device = resolve_device(config.device)
    checkpoint = Path(run_dir) / CHECKPOINT if run_dir is not None else None
    fingerprint = getattr(source, "fingerprint", None)
    target = _target_of(config.model)
    if target not in TARGETS and config.loss.replace("_", "-") != "cross-entropy":
        raise DtgError(f"{config.model} predicts classes: train it with --loss cross-entropy", field="loss")
    n_train = len(source.indices("train", target))
    if n_train == 0:
        raise DtgError("the window set has no training windows (too little data for the window size?)",
                       field="windows")
    monitor = "val" if len(source.indices("val", target)) > 0 else "train"
    batch_size = config.batch_size or n_train
    loss_fn, _ = objective(config.loss, target)

    with deterministic(config.threads):
        # --- setup: model, optimizer, schedule, early-stopping state (fresh, or from the checkpoint)
        seed_everything(config.seed)
        model = build(config.model, len(source.features), source.size, **config.model_options()).to(device)
        optimizer = optimizers.build(config.optimizer, model.parameters(), lr=config.lr)
        scheduler = make_scheduler(config.schedule, optimizer, config.epochs, config.patience)
        state = {"epoch": 0, "best_loss": math.inf, "best_epoch": 0, "bad_epochs": 0, "stopped_early": False,
                 "history": [], "best_weights": _copy_weights(model)}
        if resume:
            state = _load_checkpoint(checkpoint, config, fingerprint, model, optimizer, scheduler)

        bar = _Progress(progress, config.epochs, state["epoch"], n_train)
        t_start, epochs_this_call = time.perf_counter(), 0
        with bar:
            # --- the loop
            for epoch in range(state["epoch"], config.epochs):
                if state["stopped_early"] or (stop_after is not None and epochs_this_call >= stop_after):
                    break
                t0 = time.perf_counter()
                model.train()
                total, seen, steps = torch.zeros((), device=device), 0, 0
                bar.start_epoch(epoch)
                for x, y in source.batches("train", model.target, batch_size, True, epoch_seed(config.seed, epoch)):
                    reconstruct = y is x  # one copy to the device, not two
                    x = x.to(device, non_blocking=True)
                    y = x if reconstruct else y.to(device, non_blocking=True)
                    loss = loss_fn(model(x), y)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if config.clip:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
                    optimizer.step()
                    total += loss.detach() * len(x)
                    seen += len(x)
                    steps += 1
                    bar.batch(len(x))
                train_loss = total.item() / seen
                val_loss = evaluate(model, source, "val", config.loss, device).loss if monitor == "val" else train_loss
                _check_finite(train_loss, val_loss, epoch)
                lr = optimizer.param_groups[0]["lr"]
                if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    scheduler.step(val_loss)
                elif scheduler is not None:
                    scheduler.step()

                # --- early stopping: keep the best weights, stop after `patience` epochs without a gain
                improved = val_loss < state["best_loss"]
                if improved:
                    state.update(best_loss=val_loss, best_epoch=epoch + 1, bad_epochs=0,
                                 best_weights=_copy_weights(model))
                else:
                    state["bad_epochs"] += 1
                    state["stopped_early"] = bool(config.patience) and state["bad_epochs"] >= config.patience
                seconds = time.perf_counter() - t0
                state["history"].append({"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss,
                                         "lr": lr, "steps": steps, "seconds": seconds, "windows_per_s": seen / seconds,
                                         "best": improved})
                state["epoch"] = epoch + 1
                epochs_this_call += 1
                if checkpoint is not None:
                    _save_checkpoint(checkpoint, config, fingerprint, model, optimizer, scheduler, state)
                bar.end_epoch(train_loss, val_loss, improved)

        # --- the result: best weights, scored on the monitored split (and the test split when present)
        model.load_state_dict(state["best_weights"])
        completed = state["stopped_early"] or state["epoch"] >= config.epochs
        validation = evaluate(model, source, monitor, config.loss, device, scores=True)
        test = None
        if completed and len(source.indices("test", target)) > 0:
            test = evaluate(model, source, "test", config.loss, device, scores=True)
    return TrainResult(model=model, config=config, history=state["history"], best_epoch=state["best_epoch"],
                       epochs_run=state["epoch"], stopped_early=state["stopped_early"], completed=completed,
                       monitor=monitor, validation=validation, test=test,
                       seconds=time.perf_counter() - t_start, train_windows=n_train)


def _target_of(model_name: str) -> str:
    from dtg.models import model_class

    return model_class(model_name).target


def _copy_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _check_finite(train_loss: float, val_loss: float, epoch: int) -> None:
    for split, value in (("training", train_loss), ("validation", val_loss)):
        if not math.isfinite(value):
            raise DtgError(f"training diverged: the {split} loss became {value} in epoch {epoch + 1} "
                           "(try a lower --lr, --clip 1.0 or another optimizer)", field="lr")


# --- checkpoints: a dict of tensors and plain values, written atomically, read with weights_only=True

def _rng_states() -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "python": random.getstate(),
    }


def _set_rng_states(rng: dict[str, Any]) -> None:
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    kind, keys, pos, has_gauss, gauss = rng["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = rng["python"]
    random.setstate((version, tuple(internal), gauss_next))


def _save_checkpoint(path: Path, config: TrainConfig, fingerprint: str | None, model: torch.nn.Module,
                     optimizer: torch.optim.Optimizer, scheduler: Any, state: dict[str, Any]) -> None:
    payload = {
        "format": 1,
        "config": config.to_dict(),
        "fingerprint": fingerprint,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": _rng_states(),
        "state": state,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _load_checkpoint(path: Path | None, config: TrainConfig, fingerprint: str | None, model: torch.nn.Module,
                     optimizer: torch.optim.Optimizer, scheduler: Any) -> dict[str, Any]:
    if path is None or not path.is_file():
        raise DtgError("no interrupted run to resume (no checkpoint); run without --resume", file=path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint is the same user-facing error
        raise DtgError(f"cannot read the checkpoint ({type(exc).__name__}); run without --resume to start over",
                       file=path) from exc
    saved = payload["config"]
    for key, value in config.to_dict().items():
        if key not in TrainConfig.RESUMABLE_CHANGES and saved.get(key) != value:
            raise DtgError(f"the interrupted run used {key}={saved.get(key)!r}, not {value!r}; "
                           "resume with the same settings or run without --resume", file=path, field=key)
    if payload["fingerprint"] != fingerprint:
        raise DtgError("the interrupted run trained on other windows (fingerprint differs); "
                       "run without --resume", file=path, field="windows")
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(payload["scheduler"])
    _set_rng_states(payload["rng"])
    return payload["state"]


class _Progress:
    """Progress on stderr: a rich bar (epochs, windows of this epoch, live train/val loss) for a
    terminal, one line per epoch for logs (`lines`), or nothing (`off`)."""

    def __init__(self, mode: str | bool, epochs: int, done: int, windows: int) -> None:
        self.mode = ("bar" if mode else "off") if isinstance(mode, bool) else mode
        self.epochs, self.done, self.windows = epochs, done, windows

    def __enter__(self) -> "_Progress":
        if self.mode == "bar":
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), TextColumn("{task.fields[losses]}"),
                                console=Console(stderr=True))
            self.bar.__enter__()
            self.epoch_task = self.bar.add_task("epochs", total=self.epochs, completed=self.done, losses="")
            self.batch_task = self.bar.add_task("windows", total=self.windows, losses="")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.mode == "bar":
            self.bar.__exit__(*exc)

    def start_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if self.mode == "bar":
            self.bar.reset(self.batch_task, total=self.windows, description=f"epoch {epoch + 1}")

    def batch(self, n: int) -> None:
        if self.mode == "bar":
            self.bar.advance(self.batch_task, n)

    def end_epoch(self, train_loss: float, val_loss: float, improved: bool) -> None:
        text = f"train {train_loss:.5f}  val {val_loss:.5f}{' *' if improved else ''}"
        if self.mode == "bar":
            self.bar.update(self.epoch_task, advance=1, losses=text)
        elif self.mode == "lines":
            import sys

            print(f"epoch {self.epoch + 1}/{self.epochs}  {text}", file=sys.stderr, flush=True)


# --- from a saved window set to a published model: what `dtg train` runs

RUN_DIR = ".checkpoint"  # models/NAME/.checkpoint/: the run in progress, removed once published
LOCK = ".train.lock"      # models/NAME/.train.lock: held while a run of NAME trains and publishes


def fit(windows: str | Path, config: TrainConfig, models_dir: str | Path, name: str, *,
        resume: bool = False, progress: bool | str = False) -> dict[str, Any]:
    """Train on the window set in `windows` and publish `models_dir/name/vN`; return the summary.

    The run checkpoints into `models_dir/name/.checkpoint/` each epoch; `resume` continues it.
    """
    from dtg import registry
    from dtg.windowset import WindowSet

    registry.check_name(name)
    source = WindowSet.load(windows)
    if _target_of(config.model) not in TARGETS:  # a classifier: windows labelled from `dtg events`
        from dtg.labels import labelled_source

        source = labelled_source(source)
    run_dir = Path(models_dir) / name / RUN_DIR
    with _exclusive(Path(models_dir) / name / LOCK, name):
        if not resume and run_dir.exists():
            shutil.rmtree(run_dir)
        result = train(source, config, run_dir, resume=resume, progress=progress)
        return _publish(result, source, windows, models_dir, name, run_dir)


@contextlib.contextmanager
def _exclusive(path: Path, name: str) -> Iterator[None]:
    """One training run per model name at a time (they would share the checkpoint)."""
    from dtg.lock import LockBusy, RunLock

    try:
        lock = RunLock(path).acquire()
    except LockBusy:
        raise DtgError(f"another dtg train of '{name}' is running; wait for it or use another --name",
                       file=path) from None
    try:
        yield
    finally:
        lock.release()


def _publish(result: TrainResult, source: Any, windows: str | Path, models_dir: str | Path, name: str,
             run_dir: Path) -> dict[str, Any]:
    """Publish a finished run as the next version of `name`, then drop its checkpoint; the summary."""
    from dtg import registry

    config = result.config
    if hasattr(source, "report"):  # per-class precision/recall of a classifier
        result.extra.update(source.report(result.model))
    card = {**model_card(result, source, windows), **result.extra}
    version_dir = registry.publish(models_dir, name, result.model, card, extra={
        "history.csv": lambda path: write_history(path, result.history),
        "loss.png": lambda path: plot_losses(path, result.history, result.best_epoch, f"{name} ({config.model})"),
    })
    shutil.rmtree(run_dir, ignore_errors=True)
    return summary(result, version_dir)


def summary(result: TrainResult, version_dir: Path) -> dict[str, Any]:
    """The `dtg train` summary: docs/design.md §3 keys first."""
    return {
        "model_dir": str(version_dir),
        "epochs_run": result.epochs_run,
        "train_loss": result.train_loss,
        "val_loss": result.val_loss,
        "threshold": result.threshold,
        "name": version_dir.parent.name,
        "version": version_dir.name,
        "model": result.config.model,
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "monitor": result.monitor,
        "test_loss": result.test.loss if result.test is not None else None,
        "train_windows": result.train_windows,
        "seconds": round(result.seconds, 3),
        **result.extra,
    }


def score_summary(scores: np.ndarray) -> dict[str, Any]:
    """Distribution of window scores for the model card: count, mean, std, min, percentiles, max."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return {"n": 0}
    q = np.percentile(scores, [50, 90, 95, 99, 99.9])
    return {"n": int(scores.size), "mean": float(scores.mean()), "std": float(scores.std()),
            "min": float(scores.min()), "p50": float(q[0]), "p90": float(q[1]), "p95": float(q[2]),
            "p99": float(q[3]), "p99_9": float(q[4]), "max": float(scores.max())}


def package_versions() -> dict[str, str]:
    """Versions of what produced a model, for its card."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    import dtg

    out = {"dtg": dtg.__version__, "python": platform.python_version()}
    for package in ("torch", "numpy", "pyarrow", "safetensors"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "unknown"
    return out


def model_card(result: TrainResult, source: Any, windows: str | Path | None = None) -> dict[str, Any]:
    """The card.json content of a trained model (the registry adds name, version and weights hash)."""
    import datetime as dt

    from dtg.nn import optimizers

    cfg, model, val = result.config, result.model, result.validation
    _, _, optimizer_hp = optimizers.resolve(cfg.optimizer, cfg.lr)
    split_spec = getattr(source, "split_spec", None)
    features = list(source.features)
    return {
        "model": {"type": cfg.model, "config": model.config_dict()},
        "target": model.target,
        "features": features,
        "size": int(source.size),
        "stride": int(getattr(source, "stride", 1)),
        "max_gap": getattr(source, "max_gap", None),
        "scaler": source.scaler.to_dict(),
        "windows": {"path": None if windows is None else str(windows),
                    "fingerprint": getattr(source, "fingerprint", None),
                    "lake_fingerprint": getattr(source, "lake_fingerprint", None),
                    "split": None if split_spec is None else split_spec.to_dict()},
        "metrics": {"train_loss": result.train_loss, "val_loss": result.val_loss, "best_epoch": result.best_epoch,
                    "epochs_run": result.epochs_run, "stopped_early": result.stopped_early,
                    "monitor": result.monitor, "val_windows": val.windows, "train_windows": result.train_windows,
                    "test_loss": None if result.test is None else result.test.loss,
                    "seconds": result.seconds},
        "threshold": {"value": result.threshold, "method": "percentile", "percentile": THRESHOLD_PERCENTILE,
                      "split": result.monitor},
        "val_scores": score_summary(val.scores),
        "val_feature_errors": dict(zip(features, map(float, val.per_feature.mean(axis=0))))
        if val.windows else {},
        "test_scores": None if result.test is None else score_summary(result.test.scores),
        "training": {**cfg.to_dict(), "optimizer_hp": {k: list(v) if isinstance(v, tuple) else v
                                                       for k, v in optimizer_hp.items()}},
        "packages": package_versions(),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "lr", "steps", "seconds", "windows_per_s", "best")


def write_history(path: str | Path, history: list[dict[str, Any]]) -> None:
    """The per-epoch metrics as CSV (one row per epoch)."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: row[k] for k in HISTORY_COLUMNS})
    Path(path).write_text(buf.getvalue(), encoding="utf-8")


def plot_losses(path: str | Path, history: list[dict[str, Any]], best_epoch: int, title: str) -> None:
    """Train vs validation loss per epoch (log scale), the best epoch marked: overfitting shows as a gap."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(epochs, [h["train_loss"] for h in history], marker="o", ms=3, label="train")
    ax.plot(epochs, [h["val_loss"] for h in history], marker="o", ms=3, label="validation")
    if best_epoch:
        ax.axvline(best_epoch, color="grey", ls="--", lw=1, label=f"best epoch ({best_epoch})")
    ax.set(xlabel="epoch", ylabel="loss", title=title)
    if all(h["train_loss"] > 0 and h["val_loss"] > 0 for h in history):
        ax.set_yscale("log")
    ax.legend()
    fig.subplots_adjust(left=0.17, right=0.97, bottom=0.14, top=0.9)  # fixed margins: tight_layout costs ~0.3 s
    fig.savefig(path, format="png")
    plt.close(fig)
