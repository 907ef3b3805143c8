"""Generic fixtures any test may use: the bundled sample, a fresh workspace, the sample ingested once."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO / "data" / "sample"


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """data/sample: the bundled fleet (DTG files in CP949 and one Korean-header CSV). Read only."""
    return SAMPLE_DIR


@pytest.fixture
def tmp_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty workspace folder, made the current directory (so default paths like data/lake land here)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def sample_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lake holding the whole sample, ingested once per test session. Treat as read only."""
    from dtg.ingest import ingest

    root = tmp_path_factory.mktemp("sample_ws")
    summary = ingest([SAMPLE_DIR], root / "lake", root / "quarantine")
    assert summary.ok, summary.errors
    return root / "lake"


@pytest.fixture
def sample_copy(tmp_path: Path) -> Path:
    """A private, writable copy of data/sample."""
    dst = tmp_path / "sample"
    shutil.copytree(SAMPLE_DIR, dst)
    os.chmod(dst, 0o755)
    return dst
