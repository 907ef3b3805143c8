"""Name lookup shared by the NN core: config names -> constructors, with errors that list valid names.

Each table lives beside what it names (`activations.ACTIVATIONS`, `optimizers.OPTIMIZERS`,
`losses.LOSSES`); this module holds the lookup rules they share and `names()`, the one place a
pipeline file or the CLI can ask which names exist.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Iterable, Mapping, TypeVar

from dtg.errors import DtgError

T = TypeVar("T")


def normalise(name: str) -> str:
    """Canonical spelling of a config name: lower case, `-` and `_` treated alike, spaces trimmed."""
    return str(name).strip().lower().replace("_", "-")


def lookup(kind: str, table: Mapping[str, T], name: str) -> tuple[str, T]:
    """Return `(canonical_name, entry)` for `name` in `table`; an unknown name is a DtgError listing the valid ones.

    `kind` ("activation", "optimizer", "loss") names the field in the error.
    """
    if not isinstance(name, str):
        raise DtgError(f"{kind} name must be a string, got {type(name).__name__} (valid: {', '.join(table)})",
                       field=kind)
    wanted = normalise(name)
    for canonical, entry in table.items():
        if normalise(canonical) == wanted:
            return canonical, entry
    raise DtgError(f"unknown {kind} '{name}' (valid: {', '.join(table)})", field=kind)


def accepted_kwargs(fn: Callable[..., Any], exclude: Iterable[str] = ()) -> list[str]:
    """Keyword parameters `fn` accepts (its signature), minus `exclude`."""
    skip = set(exclude)
    params = inspect.signature(fn).parameters.values()
    return [p.name for p in params
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in skip and p.name != "self"]


def check_kwargs(kind: str, name: str, given: Iterable[str], valid: Iterable[str]) -> None:
    """Raise a DtgError naming the first hyper-parameter in `given` that is not in `valid`."""
    valid = list(valid)
    for key in given:
        if key not in valid:
            raise DtgError(f"unknown hyper-parameter '{key}' for {kind} '{name}' (valid: {', '.join(valid) or 'none'})",
                           field=key)


def names() -> dict[str, list[str]]:
    """Every name a config may use, by kind: {"activation": [...], "optimizer": [...], "loss": [...]}."""
    from dtg.nn import activations, losses, optimizers

    return {
        "activation": list(activations.ACTIVATIONS),
        "optimizer": list(optimizers.OPTIMIZERS),
        "loss": list(losses.LOSSES),
    }
