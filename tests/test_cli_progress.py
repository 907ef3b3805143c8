"""The ingest progress bar: drawn on stderr when it is a terminal, never on stdout; plain lines otherwise."""

from __future__ import annotations

import io
import sys
from types import SimpleNamespace

from dtg.cli.ingest import _with_progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run(cb):
    for name in ("a.dtg", "b.csv"):
        cb(SimpleNamespace(file=f"logs/{name}"))
    return "summary"


def test_a_terminal_gets_a_bar_on_stderr_and_every_file_still_reaches_the_callback(monkeypatch, capsys):
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    seen = []
    assert _with_progress(_run, lambda res: seen.append(res.file), 2) == "summary"
    assert seen == ["logs/a.dtg", "logs/b.csv"]
    assert "ingest" in term.getvalue()  # the bar was drawn (and cleared) on stderr
    assert capsys.readouterr().out == ""


def test_without_a_terminal_no_bar_is_drawn(monkeypatch):
    plain = io.StringIO()
    monkeypatch.setattr(sys, "stderr", plain)
    seen = []
    assert _with_progress(_run, lambda res: seen.append(res.file), 2) == "summary"
    assert seen == ["logs/a.dtg", "logs/b.csv"] and plain.getvalue() == ""
