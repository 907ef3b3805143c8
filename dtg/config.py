"""Pipeline files (TOML): read a stage's section, check its keys and value types, merge with flags.

A pipeline file (`pipelines/*.toml`, run whole by `dtg run`) has one section per stage; a key is
the stage's command-line option without its dashes (`batch_size = 32` is `--batch-size 32`).
Relative paths in it are relative to the current directory (the workspace), like the flags.
`dtg train --config FILE` reads `[train]`: the file's values replace the defaults and flags given
on the command line replace the file's. An unknown key or a value of the wrong type is a DtgError
naming the file, the line and the key.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import typing
from pathlib import Path
from typing import Any, Mapping

from dtg.errors import DtgError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

# Keys of [train] beyond the training settings (TrainConfig): where to read and write.
TRAIN_PATHS: dict[str, tuple[type, ...]] = {"windows": (str,), "models": (str,), "name": (str,), "resume": (bool,)}


def read(path: str | Path, what: str = "config file") -> tuple[dict[str, Any], str]:
    """The parsed TOML file and its text; a missing, unreadable or malformed file is a DtgError.

    `what` names the file in the error ("config file", "pipeline file").
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DtgError(f"{what} not found", file=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DtgError(f"cannot read {what}: {exc}", file=path) from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = re.search(r"\(at line (\d+), column \d+\)", message)
        line = int(found.group(1)) if found else None
        raise DtgError(f"invalid TOML: {re.sub(r' ?[(]at line.*', '', message)}", file=path, line=line) from None


def section(path: str | Path, name: str, spec: Mapping[str, tuple[type, ...]]) -> dict[str, Any]:
    """Section `[name]` of the file at `path`, each key checked against `spec` (key → accepted types)."""
    data, text = read(path)
    if name not in data:
        raise DtgError(f"no [{name}] section", file=path, field=name)
    options = data[name]
    if not isinstance(options, dict):
        raise DtgError(f"'{name}' must be a [{name}] table of options", file=path, line=_line_of(text, None, name),
                       field=name)
    for key, value in options.items():
        line = _line_of(text, name, key)
        if key not in spec:
            raise DtgError(f"unknown key in [{name}] (valid: {', '.join(spec)})", file=path, line=line, field=key)
        accepted = spec[key]
        if not _has_type(value, accepted):
            want = " or ".join("number" if t is float else t.__name__ for t in accepted)
            raise DtgError(f"must be {want}, got {value!r}", file=path, line=line, field=key)
    return dict(options)


def merge(file_options: Mapping[str, Any], flags: Mapping[str, Any]) -> dict[str, Any]:
    """The file's options with every flag that was given (not None) on top."""
    return {**file_options, **{k: v for k, v in flags.items() if v is not None}}


def dataclass_spec(cls: type) -> dict[str, tuple[type, ...]]:
    """Key → accepted TOML value types, from a config dataclass's field annotations."""
    hints = typing.get_type_hints(cls)
    spec = {}
    for f in dataclasses.fields(cls):
        types = tuple(t for t in typing.get_args(hints[f.name]) or (hints[f.name],) if t is not type(None))
        spec[f.name] = types
    return spec


def train_spec() -> dict[str, tuple[type, ...]]:
    """What `[train]` accepts: the training settings plus where to read windows and write the model."""
    from dtg.train import TrainConfig

    return {**TRAIN_PATHS, **dataclass_spec(TrainConfig), "batch_size": (int, str)}  # N or "all"


def _has_type(value: Any, accepted: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in accepted
    if isinstance(value, int) and float in accepted:
        return True
    return isinstance(value, accepted)


def _line_of(text: str, table: str | None, key: str) -> int | None:
    """1-based line of `key = ...` inside `[table]` (None: the top level), for error messages."""
    current: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        header = re.match(r"^\[\s*([^\]]+?)\s*\]", line)
        if header:
            current = header.group(1).strip().strip('"')
            if table is None and current == key:
                return number
            continue
        if current == table and re.match(rf'^"?{re.escape(key)}"?\s*=', line):
            return number
    return None
