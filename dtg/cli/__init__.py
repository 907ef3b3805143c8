"""The `dtg` command line: a thin typer layer over the library.

Each stage lives in its own module here (`dtg/cli/ingest.py`, ...) exposing `register(app)`.
Errors a user can cause (`DtgError`) become one line on stderr and exit code 1; `--debug` shows the
traceback. Usage errors exit with 2 (click's convention).
"""

from __future__ import annotations

import importlib
import sys

import click
import typer
from typer.core import TyperGroup

from dtg.errors import DtgError

# Exceptions that carry their own exit code and message: let click/typer handle them. typer >= 0.2x
# vendors its own click (typer._click), whose exceptions are not the `click` package's.
_PASSTHROUGH: tuple[type[BaseException], ...] = (
    click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort, typer.Exit, typer.Abort)
try:
    from typer._click.exceptions import TyperException as _TyperException

    _PASSTHROUGH += (_TyperException,)
except ImportError:  # an older typer uses the click package itself
    pass

# Command modules, in the order `dtg --help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "ingest",
    "window",
    "train",
    "events",
    "evaluate",
    "inject",
    "score",
    "run",
    "report",
    "lab",
    "models",
)

_state = {"debug": False}


class _DtgGroup(TyperGroup):
    """Turns exceptions from any (sub)command into one clear line and exit code 1."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except _PASSTHROUGH:
            raise
        except DtgError as exc:
            if _state["debug"]:
                raise
            click.echo(f"dtg: error: {exc}", err=True)
            ctx.exit(1)
        except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
            if _state["debug"]:
                raise
            click.echo(f"dtg: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
                       err=True)
            ctx.exit(1)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


app = typer.Typer(
    cls=_DtgGroup,
    name="dtg",
    help="Korean DTG drive logs to a validated Parquet lake, LSTM models and anomaly scores.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    """Korean DTG drive logs to a validated Parquet lake, LSTM models and anomaly scores."""
    _state["debug"] = debug


for _name in COMMAND_MODULES:
    importlib.import_module(f"dtg.cli.{_name}").register(app)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="dtg")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
