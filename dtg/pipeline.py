"""`dtg run PIPELINE.toml`: ingest → window → train → score from one file.

Each section (`[ingest]`, `[window]`, `[train]`, `[score]`) holds that stage's command-line options,
spelt as in `dtg STAGE --help` without the dashes (`max_gap = 1` is `--max-gap 1`; `sources` are the
positional arguments). The stages run through the same commands a user types, in process, so a
pipeline behaves exactly like the commands run one after the other. A section may be left out to
skip its stage. `[score]` without `model` scores with the model `[train]` just wrote.
A top-level `seed` is passed to every stage that takes `--seed` unless its section sets one.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from dtg import config
from dtg.errors import DtgError

STAGES: tuple[str, ...] = ("ingest", "window", "train", "score")
SEEDED: frozenset[str] = frozenset({"window", "train"})
POSITIONAL = "sources"


@dataclass
class Pipeline:
    """A parsed pipeline file: per stage, its options (plain data)."""

    path: Path
    sections: dict[str, dict[str, Any]]
    seed: int | None = None


@dataclass
class PipelineResult:
    """Summaries of the stages that ran, in order, and the exit code (0 unless a stage failed)."""

    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    exit_code: int = 0
    failed_stage: str | None = None


def load(path: str | Path) -> Pipeline:
    """Read and check a pipeline file; unknown sections or malformed TOML are a DtgError."""
    path = Path(path)
    data, _ = config.read(path, what="pipeline file")
    seed = data.pop("seed", None)
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise DtgError(f"seed must be an integer, got {seed!r}", file=path, field="seed")
    sections = {}
    for key, value in data.items():
        if key not in STAGES:
            raise DtgError(f"unknown section [{key}] (valid: {', '.join(STAGES)})", file=path, field=key)
        if not isinstance(value, dict):
            raise DtgError(f"[{key}] must be a table of options", file=path, field=key)
        sections[key] = value
    if not sections:
        raise DtgError(f"no stage sections (expected some of {', '.join(STAGES)})", file=path)
    return Pipeline(path=path, sections=sections, seed=seed)


def to_argv(stage: str, options: dict[str, Any], file: Path) -> list[str]:
    """The command line of one stage from its section: `key = value` → `--key value`."""
    argv = [stage]
    positional: list[str] = []
    for key, value in options.items():
        if key == POSITIONAL:
            values = value if isinstance(value, list) else [value]
            positional += [str(v) for v in values]
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + key.replace("_", "-"))
        elif isinstance(value, list):
            argv += [flag, ",".join(str(v) for v in value)]
        elif isinstance(value, (str, int, float)):
            argv += [flag, str(value)]
        else:
            raise DtgError(f"[{stage}] {key}: unsupported value {value!r}", file=file, field=key)
    return argv + positional


def run(pipeline: Pipeline, invoke: Callable[[list[str]], int] | None = None,
        log: Callable[[str], None] | None = None) -> PipelineResult:
    """Run the stages in order, each as `dtg STAGE ... --json`; stop at the first that fails."""
    say = log or (lambda msg: None)
    call = invoke or _invoke
    result = PipelineResult()
    for stage in STAGES:
        if stage not in pipeline.sections:
            continue
        options = dict(pipeline.sections[stage])
        if stage in SEEDED and pipeline.seed is not None:
            options.setdefault("seed", pipeline.seed)
        if stage == "score" and "model" not in options:
            model_dir = result.stages.get("train", {}).get("model_dir")
            if not model_dir:
                raise DtgError("[score] has no model and no [train] stage ran before it", file=pipeline.path,
                               field="model")
            options["model"] = model_dir
        argv = to_argv(stage, options, pipeline.path) + ["--json"]
        say(f"dtg run: {' '.join(argv)}")
        code, summary = _capture(call, argv)
        result.stages[stage] = summary
        if code != 0:
            result.exit_code, result.failed_stage = code, stage
            say(f"dtg run: stage '{stage}' failed (exit {code})")
            break
    return result


def _capture(call: Callable[[list[str]], int], argv: list[str]) -> tuple[int, dict[str, Any]]:
    """Run one stage with its stdout (its JSON summary) captured; stderr passes through."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = call(argv)
    text = buf.getvalue().strip()
    try:
        summary = json.loads(text.splitlines()[-1]) if text else {}
    except ValueError:
        summary = {"output": text}
    return code, summary


def _invoke(argv: list[str]) -> int:
    """Run `dtg ARGV` in this process and return its exit code."""
    import typer

    from dtg.cli import app

    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="dtg", standalone_mode=False)
    except SystemExit as exc:  # a stage may exit directly
        return int(exc.code or 0)
    except Exception as exc:  # usage errors and the like: the CLI prints them in standalone mode
        exit_code = getattr(exc, "exit_code", 1)
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        return int(exit_code)
    return int(code) if isinstance(code, int) else 0
