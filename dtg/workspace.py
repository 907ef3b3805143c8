"""Default locations inside a workspace folder (the current directory unless told otherwise)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Workspace:
    """Where each stage reads and writes by default, relative to `root`."""

    root: Path = Path(".")

    @property
    def lake(self) -> Path:
        return self.root / "data" / "lake"

    @property
    def quarantine(self) -> Path:
        return self.root / "data" / "quarantine"

    @property
    def windows(self) -> Path:
        return self.root / "data" / "windows"

    @property
    def scores(self) -> Path:
        return self.root / "data" / "scores"

    @property
    def events(self) -> Path:
        return self.root / "data" / "events"

    @property
    def ledger(self) -> Path:
        return self.root / "data" / "ledger.sqlite"

    @property
    def models(self) -> Path:
        return self.root / "models"


DEFAULT = Workspace()
