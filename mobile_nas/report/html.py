"""report.html: a self-contained page (images inlined as base64) summarising a run."""

from __future__ import annotations

import base64
import html
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

_CSS = """body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}th{background:#f4f4f4}
code{font-size:.85em;background:#f6f6f6;padding:1px 3px}img{max-width:100%}
.num{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#777;font-size:.85em}"""


def esc(x: Any) -> str:
    return html.escape(str(x))


def img(path: str | Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<p><img alt="{esc(alt)}" src="data:image/png;base64,{data}"></p>'


def kv_table(rows: list[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def trials_table(trials: list[dict[str, Any]], *, highlight: int | None = None) -> str:
    head = ("<tr><th>trial</th><th>arch</th><th>accuracy</th><th>latency ms</th>"
            "<th>MACs</th><th>params</th><th>reward</th><th>feasible</th></tr>")
    rows = []
    for t in trials:
        style = ' style="background:#fff6d5"' if t["number"] == highlight else ""
        rows.append(
            f"<tr{style}><td class=num>{t['number']}</td><td><code>{esc(t['arch'])}</code></td>"
            f"<td class=num>{100 * t['accuracy']:.2f}%</td>"
            f"<td class=num>{t['latency_ms']:.3f}</td>"
            f"<td class=num>{t['macs'] / 1e6:.2f}M</td>"
            f"<td class=num>{t['params'] / 1e3:.1f}k</td>"
            f"<td class=num>{t['reward']:.4f}</td><td>{'yes' if t['feasible'] else 'no'}</td>"
            f"</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def render(*, title: str, sections: list[tuple[str, str]]) -> str:
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    body = "".join(f"<h2>{esc(h)}</h2>{content}" for h, content in sections)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{esc(title)}</h1>"
            f"<p class=muted>generated {now} by mobile-nas report</p>{body}</body></html>\n")
