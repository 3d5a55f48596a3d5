"""report.html: one self-contained page (figures inlined as base64 PNG, no scripts, no network).

Everything that came from a model or a dataset (questions, raw outputs, expert names) is escaped
with ``html.escape`` before it reaches the page.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path
from typing import Any

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222;
line-height:1.45;padding:0 1rem}
table{border-collapse:collapse;margin:0.6rem 0 1.4rem;font-size:0.9rem}
th,td{border:1px solid #ccc;padding:0.25rem 0.55rem;text-align:right}
th:first-child,td:first-child{text-align:left}
th{background:#f3f3f3}
tr.oracle td{color:#888}
tr.der td{font-weight:600}
figure{margin:1rem 0}
img{max-width:100%;border:1px solid #eee}
.note{color:#555;font-size:0.9rem}
code{background:#f5f5f5;padding:0 0.2rem}
.trace{font-size:0.85rem}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:1rem}
"""

FIGURE_TITLES = {
    "cost_accuracy": "Accuracy vs mean normalised cost, every method and protocol",
    "accuracy_heatmap": "Per-expert accuracy by step and answer handed on",
    "flip_matrix": "KTP flips: kept, flipped to correct, flipped to wrong",
    "latency": "Latency per expert: distribution and load / prompt / generation split",
    "learning_curve": "PPO learning curves",
    "router_choices": "Which expert the routers pick at each step, and when they stop",
}


def _img(path: Path, title: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return (
        f'<figure><img alt="{escape(title)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{escape(title)}</figcaption></figure>"
    )


def _results_table(rows: list[dict[str, Any]]) -> str:
    out = [
        "<table><tr><th>method</th><th>accuracy</th><th>mean calls</th><th>mean latency s</th><th>mean cost</th></tr>"
    ]
    for r in rows:
        cls = "oracle" if r["name"].startswith("oracle") else "der" if r["name"].startswith("DER") else ""
        out.append(
            f'<tr class="{cls}"><td>{escape(r["name"])}</td><td>{r["accuracy_mean"]:.3f}</td>'
            f"<td>{r['calls_mean']:.2f}</td><td>{r['latency_mean']:.2f}</td><td>{r['cost_mean']:.2f}</td></tr>"
        )
    out.append("</table>")
    return "\n".join(out)


def _traces(samples: list[dict[str, Any]]) -> str:
    out = []
    for s in samples:
        verdict = "correct" if s["correct"] else "wrong"
        out.append(
            f'<div class="trace"><p><b>{escape(s["q"])}</b><br>gold <code>{escape(s["gold"])}</code>, '
            f"final <code>{escape(s['final'])}</code> ({verdict}, {s['calls']} calls, "
            f"{s['total_latency']:.2f} s)</p><table><tr><th>t</th><th>expert</th><th>handed</th>"
            "<th>answer</th><th>P(yes)</th><th>latency s</th><th>raw output</th></tr>"
        )
        for st in s["trace"]:
            p = "" if st.get("p_yes") is None else f"{st['p_yes']:.2f}"
            out.append(
                f"<tr><td>{st['t']}</td><td>{escape(st['pick'])}</td><td>{escape(st['handed'])}</td>"
                f"<td>{escape(st['ans'])}</td><td>{p}</td><td>{st['latency']:.2f}</td>"
                f'<td style="text-align:left">{escape(st["raw"])}</td></tr>'
            )
        out.append("</table></div>")
    return "\n".join(out)


def render(report: dict[str, Any], figures: dict[str, Path]) -> str:
    """The full page for one run."""
    prov = report["provenance"]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>der report {escape(report['timestamp'])}</title><style>{STYLE}</style></head><body>",
        "<h1>der report</h1>",
        f"<p class='note'>generated {escape(report['timestamp'])} from <code>{escape(str(prov.get('warehouse')))}"
        f"</code> (cache fingerprint <code>{escape(str(prov.get('cache_fingerprint')))}</code>); "
        f"{prov.get('train_questions')} train and {prov.get('eval_questions')} eval questions; "
        f"{escape(str(prov.get('recording', '')))}</p>",
    ]
    if "cost_accuracy" in figures:
        parts.append(_img(figures["cost_accuracy"], FIGURE_TITLES["cost_accuracy"]))
    for protocol, rows in report["end_results_eval"].items():
        parts += [
            f"<h2>Protocol <code>{escape(protocol)}</code></h2>",
            f"<p class='note'>{escape(report['protocols'][protocol])}</p>",
            _results_table(rows),
        ]
    parts.append(f"<p class='note'>{escape(report['oracle_note'])}</p>")
    front = report.get("frontier")
    if front:
        parts.append(
            "<h2>Cost-accuracy frontier (learned-stop)</h2><table><tr><th>method</th><th>setting</th>"
            "<th>accuracy</th><th>mean cost</th><th>on frontier</th></tr>"
        )
        for p in sorted(front["points"], key=lambda p: p["cost"]):
            parts.append(
                f"<tr><td>{escape(p['family'])}</td><td>{escape(p['setting'])}</td>"
                f"<td>{p['accuracy']:.3f}</td><td>{p['cost']:.2f}</td>"
                f"<td>{'yes' if p['on_frontier'] else ''}</td></tr>"
            )
        parts.append(
            "</table><p>Area under each method's accuracy-vs-cost curve:</p><table>"
            "<tr><th>method</th><th>area</th></tr>"
        )
        parts += [f"<tr><td>{escape(f)}</td><td>{a:.3f}</td></tr>" for f, a in front["area_under_frontier"].items()]
        parts.append("</table>")
    parts.append("<h2>Experts and routers</h2>")
    for key in ("accuracy_heatmap", "flip_matrix", "latency", "learning_curve", "router_choices"):
        if key in figures:
            parts.append(_img(figures[key], FIGURE_TITLES[key]))
    for protocol, samples in report["der_samples"].items():
        parts += [f"<h2>Sample traces, <code>{escape(protocol)}</code></h2>", _traces(samples)]
    parts.append("</body></html>")
    return "\n".join(parts)


def render_compare(a: dict[str, Any], b: dict[str, Any], name_a: str, name_b: str) -> str:
    """Two runs side by side: per protocol, each method's accuracy and cost in A and B."""
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>der compare</title><style>{STYLE}</style></head><body>",
        f"<h1>der: {escape(name_a)} vs {escape(name_b)}</h1>",
        f"<p class='note'>A: {escape(a['timestamp'])}, cache {escape(str(a['provenance'].get('cache_fingerprint')))}"
        f"; B: {escape(b['timestamp'])}, cache {escape(str(b['provenance'].get('cache_fingerprint')))}</p>",
    ]
    for protocol in sorted(set(a["end_results_eval"]) | set(b["end_results_eval"])):
        ra = {r["name"]: r for r in a["end_results_eval"].get(protocol, [])}
        rb = {r["name"]: r for r in b["end_results_eval"].get(protocol, [])}
        parts += [
            f"<h2>Protocol <code>{escape(protocol)}</code></h2><table><tr><th>method</th>"
            "<th>accuracy A</th><th>accuracy B</th><th>&Delta; accuracy</th><th>cost A</th><th>cost B</th></tr>"
        ]
        for name in sorted(set(ra) | set(rb)):
            x, y = ra.get(name), rb.get(name)
            delta = f"{y['accuracy_mean'] - x['accuracy_mean']:+.3f}" if x and y else ""
            cells = [
                escape(name),
                _fmt(x, "accuracy_mean", 3),
                _fmt(y, "accuracy_mean", 3),
                delta,
                _fmt(x, "cost_mean", 2),
                _fmt(y, "cost_mean", 2),
            ]
            parts.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _fmt(row: dict[str, Any] | None, key: str, digits: int) -> str:
    return "-" if row is None else f"{row[key]:.{digits}f}"
