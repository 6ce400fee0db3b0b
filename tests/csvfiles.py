"""Writing recipients CSVs for tests: one helper, shared by every suite."""

from __future__ import annotations

import csv
from pathlib import Path


def write_csv(path: Path, rows: list[dict[str, str]] | list[list[str]], header: list[str] | None = None) -> Path:
    """Write a recipients CSV: dict rows (header from the first row) or lists with an explicit header."""
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        if rows and isinstance(rows[0], dict):
            header = header or list(rows[0])
            w.writerow(header)
            for r in rows:
                w.writerow([r[h] for h in header])  # type: ignore[index]
        else:
            if header is not None:
                w.writerow(header)
            w.writerows(rows)  # type: ignore[arg-type]
    return path
