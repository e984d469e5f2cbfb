"""The reports of a results folder, rebuilt from its finished cells.

Everything is rebuilt from the cells on disk (``<protocol>/cells``), so the
reports of an interrupted run show what is finished, marked as such. One job per
module: :mod:`~geosal.evaluation.report.summary` (cells -> numbers with their 95 %
intervals, :mod:`geosal.evaluation.uncertainty`),
:mod:`~geosal.evaluation.report.tables` (CSV and Markdown),
:mod:`~geosal.evaluation.report.plots` (matplotlib) and
:mod:`~geosal.evaluation.report.weights` (the learned layer weights on held-apart images) and
:mod:`~geosal.evaluation.report.readme` (``README.md``); :func:`write_all` runs them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from geosal.evaluation.report import plots, tables
from geosal.evaluation.report.readme import precision_text, readme_text
from geosal.evaluation.report.summary import (
    PROTOCOL_FOLDERS,
    load_cells,
    load_run,
    summarise_deletion,
    summarise_kar_roar,
    summarise_layers,
    summarise_road,
    timing_table,
)
from geosal.evaluation.report.weights import write_weights


def write_all(results: Path, log: Callable[[str], None] = print) -> Path:
    """Rewrite every report of ``results`` from its cells, and ``README.md``; returns the README's path."""
    results = Path(results)
    timing = timing_table(results)
    steps = {  # protocol -> (cells -> numbers, CSV + Markdown, PNG), in README order
        "kar-roar": (summarise_kar_roar, partial(tables.write_kar_roar, timing=timing), plots.plot_kar_roar),
        "road": (summarise_road, tables.write_road, plots.plot_road),
        "deletion": (summarise_deletion, tables.write_deletion, plots.plot_deletion),
        "layers": (summarise_layers, tables.write_layers, plots.plot_layers),
    }
    written = {protocol: _write_protocol(results, protocol, *step) for protocol, step in steps.items()}
    sections: dict[str, str | None] = {protocol: section for protocol, (section, _) in written.items()}
    sections["weights"] = write_weights(results, load_cells(results / PROTOCOL_FOLDERS["kar-roar"]),
                                        load_cells(results / PROTOCOL_FOLDERS["layers"]))
    sections["timing"] = tables.write_timing(results, timing)
    images = {protocol: summary.images for protocol, (_, summary) in written.items() if summary is not None}
    runs = {name: load_run(results / folder) for name, folder in PROTOCOL_FOLDERS.items()}
    precisions = {name: precision_text(load_cells(results / folder)) for name, folder in PROTOCOL_FOLDERS.items()}
    (results / "README.md").write_text(readme_text(sections, runs, images, precisions))
    log(f"reports written to {results}/ (README.md, *.md, *.csv, *.png)")
    return results / "README.md"


def _write_protocol(results: Path, protocol: str, summarise: Callable, write_tables: Callable,
                    plot: Callable) -> tuple[str | None, object | None]:
    """The reports of one protocol from its cells; its README summary and its summary, or two None when no cell is finished."""
    folder = results / PROTOCOL_FOLDERS[protocol]
    cells = load_cells(folder)
    if not cells:
        return None, None
    summary = summarise(cells)
    section = write_tables(results, cells, load_run(folder), summary)
    plot(results / f"{PROTOCOL_FOLDERS[protocol]}.png", summary)
    return section, summary


__all__ = ["write_all"]
