"""``OUT/report.html``: one self-contained page about an archive run.

No external assets: the style is inline and the only images are each scene's
``quicklook.jpg``, referenced by a relative path (``<name>/quicklook.jpg``) so
the report works wherever ``OUT/`` is copied or served.
"""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape
from pathlib import Path
from urllib.parse import quote

import geosal
from geosal.archive.outcome import ArchiveResult, SceneOutcome
from geosal.raster.objects import is_file, join, write_text

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; vertical-align: middle; }
th { background: #f0f0f0; }
td.text { text-align: left; }
tr.failed { background: #fde8e8; }
tr.skipped { color: #666; }
img.thumb { width: 240px; height: auto; display: block; }
.error { color: #a00; text-align: left; font-family: monospace; white-space: pre-wrap; }
dl.totals { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dl.totals dt { font-weight: bold; }
"""


def human_bytes(size: int) -> str:
    """``size`` bytes as ``"12.3 MiB"`` (binary units)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _seconds(outcome: SceneOutcome, stage: str) -> str:
    value = outcome.seconds.get(stage)
    return "" if value is None else f"{value:.1f}"


def _row(outcome: SceneOutcome, out: str | Path) -> str:
    folder = quote(outcome.name)
    shown = outcome.status != "failed" and is_file(join(out, outcome.name, "quicklook.jpg"))
    thumb = (f'<a href="{folder}/quicklook.jpg"><img class="thumb" src="{folder}/quicklook.jpg" '
             f'alt="quicklook of {escape(outcome.name)}" loading="lazy"></a>') if shown else ""
    name = f'<a href="{folder}/">{escape(outcome.name)}</a>' if outcome.status != "failed" else escape(outcome.name)
    tiles = f"{outcome.tiles_computed} / {outcome.tiles}" if outcome.tiles else ""
    blocks = f"{outcome.blocks}" + (f" ({outcome.blocks_skipped} done before)" if outcome.blocks_skipped and outcome.status == "ok" else "")
    cells = [
        f'<td class="text">{thumb}</td>',
        f'<td class="text">{name}<br><small>{escape(outcome.source)}</small></td>',
        f'<td class="text">{escape(outcome.status)}</td>',
        f"<td>{tiles}</td>",
        f"<td>{blocks if outcome.blocks else ''}</td>",
        *(f"<td>{_seconds(outcome, stage)}</td>" for stage in ("plan", "pass1", "pass2", "export", "total")),
        f"<td>{outcome.tiles_per_second:.2f}</td>" if outcome.tiles_computed else "<td></td>",
        f"<td>{human_bytes(outcome.output_bytes) if outcome.output_bytes else ''}</td>",
    ]
    row = f'<tr class="{escape(outcome.status)}">{"".join(cells)}</tr>'
    if outcome.error:
        stage = f" (during {escape(outcome.stage)})" if outcome.stage else ""
        row += f'<tr class="failed"><td></td><td class="error" colspan="11">{escape(outcome.error)}{stage}</td></tr>'
    return row


def render_report(result: ArchiveResult, archive: str = "") -> str:
    """The report as an HTML string (see the module docstring)."""
    totals = result.totals()
    seconds = totals["seconds"]
    failures = [o for o in result.outcomes if o.status == "failed"]
    failure_list = "".join(
        f"<li><b>{escape(o.name)}</b> ({escape(o.source)}): <span class=\"error\">{escape(o.error or '')}</span></li>" for o in failures
    )
    header = "".join(f"<th>{h}</th>" for h in (
        "quicklook", "scene", "status", "tiles computed / total", "blocks", "plan s", "pass 1 s", "pass 2 s",
        "export s", "total s", "tiles/s (pass 1)", "output size"))
    rows = "".join(_row(o, result.out) for o in result.outcomes)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>geosal archive report</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>geosal archive report</h1>
<dl class="totals">
<dt>archive</dt><dd>{escape(archive)}</dd>
<dt>output</dt><dd>{escape(str(result.out))} (<a href="catalog.json">catalog.json</a>, <a href="summary.json">summary.json</a>)</dd>
<dt>scenes</dt><dd>{totals['scenes']}: {totals['ok']} computed, {totals['skipped']} complete already, {totals['failed']} failed</dd>
<dt>tiles</dt><dd>{totals['tiles_computed']} computed of {totals['tiles']}</dd>
<dt>wall time</dt><dd>{seconds.get('total', 0.0):.1f} s (planning {seconds.get('plan', 0.0):.1f} s, execution {seconds.get('run', 0.0):.1f} s)</dd>
<dt>throughput</dt><dd>{totals['tiles_per_second']:.2f} tiles/s over the execution</dd>
<dt>output size</dt><dd>{human_bytes(totals['output_bytes'])}</dd>
<dt>generated</dt><dd>{datetime.now(timezone.utc).isoformat(timespec='seconds')} by geosal {escape(geosal.__version__)}</dd>
</dl>
{f'<h2>Failures ({len(failures)})</h2><ul>{failure_list}</ul>' if failures else ''}
<h2>Scenes</h2>
<table>
<thead><tr>{header}</tr></thead>
<tbody>{rows}</tbody>
</table>
</body>
</html>
"""


def write_report(path: str | Path, result: ArchiveResult, archive: str = "") -> str | Path:
    """Write :func:`render_report` to ``path`` (UTF-8; a path or an ``s3://`` URL); returns ``path``."""
    write_text(path, render_report(result, archive), encoding="utf-8")
    return path
