"""`dtg train`: train a model on a window set and publish it as `models/NAME/VERSION/`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer

from dtg.cli.common import JSON_OPTION, emit, log
from dtg.workspace import DEFAULT


def _human(s: dict[str, Any]) -> str:
    stop = " (stopped early)" if s["stopped_early"] else ""
    test = "" if s["test_loss"] is None else f", test {s['test_loss']:.5f}"
    return "\n".join([
        f"model: {s['model_dir']} ({s['model']})",
        f"  {s['epochs_run']} epochs{stop}, best epoch {s['best_epoch']}: "
        f"train loss {s['train_loss']:.5f}, {s['monitor']} {s['val_loss']:.5f}{test}",
        f"  threshold (p99 of {s['monitor']} window scores): {s['threshold']:.5f}",
    ])


def train(
    windows: Optional[Path] = typer.Option(None, "--windows", help=f"Window set from `dtg window` [{DEFAULT.windows}]."),
    config: Optional[Path] = typer.Option(None, "--config", help="Pipeline file (TOML) whose [train] section to use."),
    model: Optional[str] = typer.Option(None, "--model", help="lstm-ae | lstm-forecaster | mlp-ae | lstm-classifier [lstm-ae]."),
    optimizer: Optional[str] = typer.Option(None, "--optimizer", help="A name from dtg.nn.optimizers [adam]."),
    activation: Optional[str] = typer.Option(None, "--activation", help="A name from dtg.nn.activations [model's]."),
    loss: Optional[str] = typer.Option(None, "--loss", help="mse | cross-entropy (binary on scaled values; softmax for lstm-classifier) [mse; classifier: cross-entropy]."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Most epochs to run [20]."),
    batch_size: Optional[str] = typer.Option(None, "--batch-size", help="Windows per step: N, 1 (stochastic) or "
                                                                       "all (full batch) [64]."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate [the optimizer's default]."),
    hidden: Optional[int] = typer.Option(None, "--hidden", help="Hidden units [model's]."),
    layers: Optional[int] = typer.Option(None, "--layers", help="Stacked layers [model's]."),
    latent: Optional[int] = typer.Option(None, "--latent", help="Bottleneck size of the autoencoders [8]."),
    dropout: Optional[float] = typer.Option(None, "--dropout", help="Dropout rate [0]."),
    patience: Optional[int] = typer.Option(None, "--patience", help="Epochs without a better validation loss "
                                                                   "before stopping; 0 never stops early [5]."),
    clip: Optional[float] = typer.Option(None, "--clip", help="Gradient-norm clipping; 0 off [0]."),
    schedule: Optional[str] = typer.Option(None, "--schedule", help="LR schedule: none | cosine | step | plateau."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of every random source [0]."),
    device: Optional[str] = typer.Option(None, "--device", help="auto | cpu | cuda [auto]."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads; 0 = torch's default [0]."),
    models: Optional[Path] = typer.Option(None, "--models", help=f"Model registry folder [{DEFAULT.models}]."),
    name: Optional[str] = typer.Option(None, "--name", help="Model name: models/NAME/vN [the model type]."),
    resume: Optional[bool] = typer.Option(None, "--resume/--no-resume",
                                          help="Continue the interrupted run of NAME from its checkpoint."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Train a model on the window set; early stopping, checkpoints each epoch, --resume continues."""
    from dtg import config as pipeline_config
    from dtg.train import TrainConfig, fit, parse_batch_size

    flags = {"windows": windows, "model": model, "optimizer": optimizer, "activation": activation, "loss": loss,
             "epochs": epochs, "batch_size": batch_size, "lr": lr, "hidden": hidden, "layers": layers,
             "latent": latent, "dropout": dropout, "patience": patience, "clip": clip, "schedule": schedule,
             "seed": seed, "device": device, "threads": threads, "models": models, "name": name, "resume": resume}
    file_options = pipeline_config.section(config, "train", pipeline_config.train_spec()) if config else {}
    options = pipeline_config.merge(file_options, flags)
    windows_dir = Path(options.pop("windows", DEFAULT.windows))
    models_dir = Path(options.pop("models", DEFAULT.models))
    do_resume = bool(options.pop("resume", False))
    if "batch_size" in options:
        options["batch_size"] = parse_batch_size(options["batch_size"])
    name_ = options.pop("name", None)
    cfg = TrainConfig.from_dict(options)
    name_ = name_ or cfg.model
    log(f"training {cfg.model} on {windows_dir} -> {models_dir / name_}")
    summary = fit(windows_dir, cfg, models_dir, name_, resume=do_resume,
                  progress="bar" if sys.stderr.isatty() else "lines")
    emit(summary, as_json, _human)


def register(app: typer.Typer) -> None:
    app.command("train")(train)
