"""`dtg ingest` as a library call: sources -> read -> validate -> quarantine + lake, with a summary.

Per file: read (unparseable rows become rejects), validate (range/GPS/duplicate/clock rejects),
write the rejects to the quarantine, then the valid rows to the lake (which counts rows it already
holds as duplicates). So for every file and for the run,
rows_read == rows_ingested + rows_duplicate + rows_quarantined.
A file that cannot be read at all is one entry in `errors`; the other files go on.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import pyarrow as pa

from dtg import quarantine, schema
from dtg.errors import DtgError
from dtg.lake import Lake
from dtg.readers import EXTENSIONS, read_source
from dtg.validate import outside_korea, validate

SKIP_NAMES = ("readme", "license", "licence", "sources")


@dataclass
class FileResult:
    """What happened to one source file."""

    file: str
    format: str = ""
    encoding: str = ""
    variant: str = ""
    rows_read: int = 0
    rows_ingested: int = 0
    rows_duplicate: int = 0
    rows_quarantined: int = 0
    rows_outside_korea: int = 0
    error: str | None = None


@dataclass
class IngestSummary:
    """The run's summary (docs/design.md §3); `to_dict()` is what `dtg ingest --json` prints."""

    lake: str
    quarantine: str
    files: list[FileResult] = field(default_factory=list)
    reasons: Counter = field(default_factory=Counter)
    quarantine_files: list[str] = field(default_factory=list)

    def _sum(self, key: str) -> int:
        return sum(getattr(f, key) for f in self.files)

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [{"file": f.file, "row": None, "reason": f.error} for f in self.files if f.error]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": len(self.files),
            "files_failed": sum(1 for f in self.files if f.error),
            "rows_read": self._sum("rows_read"),
            "rows_ingested": self._sum("rows_ingested"),
            "rows_duplicate": self._sum("rows_duplicate"),
            "rows_quarantined": self._sum("rows_quarantined"),
            "rows_outside_korea": self._sum("rows_outside_korea"),
            "quarantine_reasons": dict(sorted(self.reasons.items())),
            "errors": self.errors,
            "lake": self.lake,
            "quarantine": self.quarantine,
            "per_file": [asdict(f) for f in self.files],
        }


def expand_sources(sources: Iterable[str | Path]) -> list[Path]:
    """Files named directly, plus the log files (known extensions) found recursively in folders.

    Hidden files and README/LICENSE files inside folders are skipped; a missing path is returned as
    is, so that reading it reports the error.
    """
    out: list[Path] = []
    for src in sources:
        p = Path(src)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(p).parts
                if (f.is_file() and f.suffix.lower() in EXTENSIONS and not any(x.startswith(".") for x in rel)
                        and not f.name.lower().startswith(SKIP_NAMES)):
                    out.append(f)
        else:
            out.append(p)
    return list(dict.fromkeys(out))


def ingest_file(path: Path, lake: Lake, quarantine_dir: Path, *, fmt: str = "auto", encoding: str = "auto",
                tz: str = schema.TZ, mapping: dict[str, Any] | None = None, vehicle: str | None = None,
                reasons: Counter | None = None,
                ingested_at: dt.datetime | None = None) -> tuple[FileResult, Path | None]:
    """Ingest one file; a DtgError from reading becomes `FileResult.error`."""
    res = FileResult(file=str(path))
    try:
        read = read_source(path, fmt=fmt, encoding=encoding, tz=tz, mapping=mapping, vehicle=vehicle)
    except DtgError as exc:
        res.error = str(exc) if exc.file else f"{path}: {exc}"
        return res, None
    res.format, res.encoding, res.variant, res.rows_read = read.format, read.encoding, read.variant, read.rows_read
    good, rejects = validate(read.table, read.raw_text if read.raw is not None else None)
    all_rejects = pa.concat_tables([read.rejects, rejects]) if rejects.num_rows else read.rejects
    qfile = quarantine.write(quarantine_dir, all_rejects, ingested_at)
    if reasons is not None and all_rejects.num_rows:
        reasons.update(all_rejects.column("reason").to_pylist())
    res.rows_quarantined = all_rejects.num_rows
    res.rows_outside_korea = int(outside_korea(good).sum())
    res.rows_ingested, res.rows_duplicate = lake.write(good)
    return res, qfile


def ingest(sources: Iterable[str | Path], lake_dir: str | Path, quarantine_dir: str | Path, *, fmt: str = "auto",
           encoding: str = "auto", tz: str = schema.TZ, mapping: dict[str, Any] | None = None,
           vehicle: str | None = None, progress: Callable[[FileResult], None] | None = None) -> IngestSummary:
    """Ingest every file of `sources` (files or folders) into the lake; see the module docstring."""
    from dtg.readers import FORMATS
    from dtg.readers.base import check_tz
    from dtg.readers.encoding import normalise

    check_tz(tz)  # option errors stop the run before any file, as one line
    normalise(encoding)
    if fmt not in FORMATS:
        raise DtgError(f"unknown format '{fmt}' (choose from {', '.join(FORMATS)})", field="format")
    lake, qdir = Lake(lake_dir), Path(quarantine_dir)
    summary = IngestSummary(lake=str(lake_dir), quarantine=str(quarantine_dir))
    sources = list(sources)
    files = expand_sources(sources)
    if not files:
        raise DtgError(f"no log files found in {', '.join(map(str, sources)) or 'the arguments'}")
    started = dt.datetime.now(dt.timezone.utc)
    for path in files:
        res, qfile = ingest_file(path, lake, qdir, fmt=fmt, encoding=encoding, tz=tz, mapping=mapping,
                                 vehicle=vehicle, reasons=summary.reasons, ingested_at=started)
        summary.files.append(res)
        if qfile is not None:
            summary.quarantine_files.append(str(qfile))
        if progress is not None:
            progress(res)
    return summary
