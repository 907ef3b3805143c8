"""Helpers every command shares: the JSON summary, logging to stderr, common option types."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any, Callable

import typer


def _default(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, (dt.datetime, dt.date)):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def to_json(summary: Any) -> str:
    """The summary as one line of JSON (numpy, datetimes, paths and dataclasses handled)."""
    return json.dumps(summary, default=_default, ensure_ascii=False)


def emit(summary: dict[str, Any], as_json: bool, human: Callable[[dict[str, Any]], str] | None = None) -> None:
    """Print the command's summary on stdout: exactly one JSON object with --json, else readable text."""
    if as_json:
        sys.stdout.write(to_json(summary) + "\n")
        sys.stdout.flush()
        return
    text = human(summary) if human else "\n".join(f"{k}: {v}" for k, v in summary.items())
    typer.echo(text)


def log(message: str) -> None:
    """A log line for humans: always on stderr, so stdout stays machine-readable."""
    typer.echo(message, err=True)


JSON_OPTION = typer.Option(False, "--json", help="Print exactly one JSON summary object on stdout.")
