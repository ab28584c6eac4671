"""Use case: the answer tables in ``antworten/`` looked at page by page, and their files
(CSV, XLSX) found by name for a download – never a path outside that folder."""

from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass
from pathlib import Path

from formtool.data.filenames import file_in
from formtool.errors import FormtoolError
from formtool.workspace import Workspace

ANSWERS_DIR = "antworten"
DOWNLOADS = (".csv", ".xlsx")


class AnswersError(FormtoolError):
    """A table that is not there."""


def _folder(ws: Workspace) -> Path:
    return ws.root / ANSWERS_DIR


def tables(ws: Workspace) -> list[str]:
    """The tables by name (``buendnispartner`` for buendnispartner.csv/.xlsx)."""
    folder = _folder(ws)
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.csv") if p.is_file())


def download(ws: Workspace, filename: str) -> Path:
    """A table's file by its name as the page lists it."""
    path = file_in(_folder(ws), filename, DOWNLOADS)
    if path is None or path.stem not in tables(ws):
        raise AnswersError(f"Keine Tabelle „{filename}“ in {ANSWERS_DIR}/.")
    return path


@dataclass
class TableView:
    name: str
    header: list[str]
    rows: list[list[str]]
    total: int
    page: int
    pages: int
    files: list[str]  # downloads


def view(ws: Workspace, name: str, *, page: int = 1, per_page: int = 50) -> TableView:
    """One page of a table, read streaming (a table of 60,000 rows stays cheap)."""
    if name not in tables(ws):
        raise AnswersError(f"Keine Tabelle „{name}“ in {ANSWERS_DIR}/ (vorhanden: "
                           f"{', '.join(tables(ws)) or 'keine'}).")
    path = _folder(ws) / f"{name}.csv"
    first = (max(1, page) - 1) * per_page
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter=";")
        header = next(reader, [])
        rows = list(itertools.islice(reader, first, first + per_page))
        total = first + len(rows) + sum(1 for _ in reader)
    pages = max(1, -(-total // per_page))
    files = [p.name for p in sorted(_folder(ws).glob(f"{name}.*"))
             if p.suffix.lower() in DOWNLOADS]
    return TableView(name, header, rows, total, min(max(1, page), pages), pages, files)
