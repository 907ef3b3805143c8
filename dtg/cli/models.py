"""`dtg models list|show`: the model registry (models/NAME/VERSION/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from dtg.cli.common import JSON_OPTION, emit
from dtg.workspace import DEFAULT

models_app = typer.Typer(help="List and inspect trained models (models/NAME/VERSION/).", no_args_is_help=True)


def _fmt(value: Any) -> str:
    return f"{value:.5g}" if isinstance(value, float) else ("-" if value is None else str(value))


def _human_list(s: dict[str, Any]) -> str:
    if not s["models"]:
        return f"no models in {s['models_dir']}"
    rows = [("NAME/VERSION", "MODEL", "CREATED", "EPOCHS", "VAL_LOSS", "THRESHOLD")]
    for m in s["models"]:
        if "error" in m:
            rows.append((f"{m['name']}/{m['version']}", "ERROR", m["error"], "", "", ""))
            continue
        rows.append((f"{m['name']}/{m['version']}", m["model"], _fmt(m["created"]), _fmt(m["epochs_run"]),
                     _fmt(m["val_loss"]), _fmt(m["threshold"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def list_models(
    models: Path = typer.Option(DEFAULT.models, "--models", help="Model registry folder."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Every published model version, oldest first per name."""
    from dtg.registry import list_models as rows

    emit({"models_dir": str(models), "models": rows(models)}, as_json, _human_list)


def _human_card(card: dict[str, Any]) -> str:
    metrics, threshold, scores = card.get("metrics", {}), card.get("threshold", {}), card.get("val_scores", {})
    lines = [
        f"{card.get('name')}/{card.get('version')}: {card['model']['type']} (target {card.get('target')}), "
        f"created {card.get('created')}",
        f"  config: {', '.join(f'{k}={v}' for k, v in card['model']['config'].items())}",
        f"  windows: {card['size']} s x {','.join(card['features'])}, stride {card.get('stride')}, "
        f"fingerprint {card.get('windows', {}).get('fingerprint')}",
        f"  metrics: epochs {metrics.get('epochs_run')}, best {metrics.get('best_epoch')}, "
        f"train loss {_fmt(metrics.get('train_loss'))}, val loss {_fmt(metrics.get('val_loss'))}, "
        f"test loss {_fmt(metrics.get('test_loss'))}",
        f"  threshold: {_fmt(threshold.get('value'))} ({threshold.get('method')} p{_fmt(threshold.get('percentile'))}"
        f" of {threshold.get('split')} window scores; median {_fmt(scores.get('p50'))}, max {_fmt(scores.get('max'))})",
        f"  weights: {card['weights'].get('file')} sha256 {card['weights'].get('sha256')}",
    ]
    return "\n".join(lines)


def show(
    model: str = typer.Argument(..., help="NAME, NAME/VERSION (vN or latest) or a model folder."),
    models: Path = typer.Option(DEFAULT.models, "--models", help="Model registry folder."),
    as_json: bool = JSON_OPTION,
) -> None:
    """A model's card: type, config, data, metrics, threshold, weights hash."""
    from dtg.registry import read_card, resolve

    folder = resolve(model, models)
    emit({**read_card(folder), "model_dir": str(folder)}, as_json, _human_card)


def register(app: typer.Typer) -> None:
    models_app.command("list")(list_models)
    models_app.command("show")(show)
    app.add_typer(models_app, name="models")
