"""One error type for everything a user can cause: bad input, missing model, invalid config.

The CLI turns a `DtgError` into one line on stderr and exit code 1, without a traceback.
"""

from __future__ import annotations

from pathlib import Path


class DtgError(Exception):
    """A failure caused by the user's input, reported as one line naming file, line and field."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = None if file is None else str(file)
        self.line = line
        self.field = field

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        field = f"field '{self.field}': " if self.field else ""
        return f"{where}{field}{self.message}"
