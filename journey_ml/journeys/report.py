"""The journey map: one self-contained HTML page per task and segment.

Plotly figures (the Sankey of stage flows, the transition graph with friction in red)
with plotly.js inlined, so the page opens offline; the tables are plain HTML tables.
Each figure's camera button saves a PNG for slides. Pages live under
``<reports_dir>/journeys/<task>/<segment>/`` next to a JSON file with every table.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from journey_ml.journeys.build import JourneyMap
from journey_ml.journeys.sessions import CONVERSION, EXIT, ONGOING, START

SUBDIR = "journeys"
_END_COLOURS = {CONVERSION: "#2ca02c", EXIT: "#d62728", ONGOING: "#7f7f7f", "(more steps)": "#bcbd22",
                START: "#1f77b4"}
_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}.hot{background:#fde0dd}.muted{color:#777;font-size:12px}
.kpi{display:inline-block;margin-right:24px}.kpi b{font-size:20px;display:block}"""


def _config(name: str) -> dict:
    return {"displaylogo": False, "responsive": True,
            "toImageButtonOptions": {"format": "png", "scale": 2, "filename": name}}


def _exit_rates(m: JourneyMap) -> dict[str, float]:
    return {} if m.friction.empty else dict(zip(m.friction["step"], m.friction["exit_rate"], strict=True))


def _red(rate: float) -> str:
    """White to red with the exit rate (0 -> pale, 1 -> deep red)."""
    r = 0.0 if rate is None or math.isnan(rate) else max(0.0, min(1.0, rate))
    g = int(230 - 200 * r)
    return f"rgb(240,{g},{g})"


def sankey_figure(m: JourneyMap):
    """Stage flows step by step; a step's node is redder the higher its exit rate."""
    import plotly.graph_objects as go

    f = m.flows
    rates = _exit_rates(m)
    nodes: dict[tuple[int, str], int] = {}
    labels, colours, xs = [], [], []
    max_step = int(f["step"].max()) if len(f) else 1

    def node(step: int, name: str) -> int:
        key = (0, name) if name.startswith("(") else (step, name)
        if key not in nodes:
            nodes[key] = len(labels)
            labels.append(name if name.startswith("(") else f"{name} ({step})")
            colours.append(_END_COLOURS.get(name) or _red(rates.get(name, 0.0)))
            xs.append(0.999 if name.startswith("(") else (step - 1) / max(max_step, 1) * 0.9 + 0.001)
        return nodes[key]

    src, tgt, val = [], [], []
    for r in f.itertuples():
        src.append(node(int(r.step), r.source))
        tgt.append(node(int(r.step) + 1, r.target))
        val.append(int(r.journeys))
    fig = go.Figure(go.Sankey(arrangement="snap", node={"label": labels, "color": colours, "pad": 12,
                                                        "line": {"color": "#555", "width": 0.5}},
                              link={"source": src, "target": tgt, "value": val}))
    fig.update_layout(title=f"Stage flows, first {max_step} steps ({m.journeys:,} journeys); "
                            "red nodes lose journeys", height=520, margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


def transition_graph_figure(m: JourneyMap, min_probability: float = 0.05):
    """Directed graph of the transition matrix: edges of probability >= ``min_probability``
    (width by probability), nodes sized by journeys and coloured by exit rate; the top
    friction step is ringed in red and its edge to (exit) drawn red."""
    import plotly.graph_objects as go

    tr = m.transitions
    rates = _exit_rates(m)
    reach = {} if m.friction.empty else dict(zip(m.friction["step"], m.friction["journeys"], strict=True))
    states = [START, *[s for s in (m.friction["step"] if not m.friction.empty else [])], CONVERSION, EXIT, ONGOING]
    states = list(dict.fromkeys(s for s in states if s in set(tr["from"]) | set(tr["to"]) or s == START))
    ang = np.linspace(0, 2 * np.pi, len(states), endpoint=False)
    pos = {s: (math.cos(a), math.sin(a)) for s, a in zip(states, ang, strict=True)}
    top = m.top_friction["step"] if m.top_friction else None
    fig = go.Figure()
    ann = []
    for frm, to, prob in zip(tr["from"], tr["to"], tr["probability"], strict=True):
        if prob < min_probability or frm not in pos or to not in pos:
            continue
        (x0, y0), (x1, y1) = pos[frm], pos[to]
        hot = frm == top and to == EXIT
        ann.append({"x": x1 * 0.9 + x0 * 0.1, "y": y1 * 0.9 + y0 * 0.1, "ax": x0, "ay": y0, "xref": "x", "yref": "y",
                    "axref": "x", "ayref": "y", "showarrow": True, "arrowhead": 2, "arrowsize": 1,
                    "arrowwidth": 1 + 5 * prob, "arrowcolor": "#d62728" if hot else "rgba(90,90,90,0.45)",
                    "text": ""})
    xs = [pos[s][0] for s in states]
    ys = [pos[s][1] for s in states]
    size = [14 + 30 * math.sqrt(reach.get(s, 0) / max(max(reach.values(), default=1), 1)) for s in states]
    colour = [_END_COLOURS.get(s) or _red(rates.get(s, 0.0)) for s in states]
    text = [f"{s}<br>exit rate {rates[s]:.0%}" if s in rates else s for s in states]
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers+text", text=states, textposition="top center",
                             hovertext=text, hoverinfo="text",
                             marker={"size": size, "color": colour,
                                     "line": {"color": ["#d62728" if s == top else "#555" for s in states],
                                              "width": [4 if s == top else 1 for s in states]}}))
    fig.update_layout(annotations=ann, showlegend=False, height=560,
                      title=f"Transition graph (edges with probability >= {min_probability:.0%}); "
                            f"top friction: {top or '-'}",
                      xaxis={"visible": False, "range": [-1.4, 1.4]}, yaxis={"visible": False, "range": [-1.3, 1.3]},
                      margin={"l": 10, "r": 10, "t": 50, "b": 10}, plot_bgcolor="white")
    return fig


def _fmt(v, kind: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if kind == "%":
        return f"{v:.1%}"
    if kind == "int":
        return f"{int(v):,}"
    if isinstance(v, float | np.floating):
        return f"{v:,.2f}" if abs(v) < 1000 else f"{v:,.0f}"
    return html.escape(str(v))


def html_table(df: pd.DataFrame, cols: list[tuple[str, str, str]], table_id: str, hot_first: bool = False) -> str:
    """``cols``: (column, heading, format '' / '%' / 'int' / 'text')."""
    if df is None or df.empty:
        return f'<p id="{table_id}" class="muted">none yet</p>'
    head = "".join(f'<th class="{"l" if k == "text" else ""}">{html.escape(h)}</th>' for _, h, k in cols)
    body = []
    for i, r in enumerate(df.to_dict("records")):
        cls = ' class="hot"' if hot_first and i == 0 else ""
        cells = "".join(f'<td class="{"l" if k == "text" else ""}">{_fmt(r.get(c), k)}</td>' for c, _, k in cols)
        body.append(f"<tr{cls}>{cells}</tr>")
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def attribution_frame(m: JourneyMap, what: str = "conversions") -> pd.DataFrame:
    """channel x method, each cell "figure [low, high]" (the bootstrap interval)."""
    if m.attribution is None:
        return pd.DataFrame()
    t = m.attribution.table
    out = {}
    for method, g in t.groupby("method", sort=False):
        out[method] = {r["channel"]: (f"{r[what]:,.1f}" + ("" if math.isnan(r[f"{what}_low"]) else
                                      f" [{r[f'{what}_low']:,.1f}, {r[f'{what}_high']:,.1f}]"))
                       for r in g.to_dict("records")}
    return pd.DataFrame(out).rename_axis("channel").reset_index()


def render(m: JourneyMap) -> str:
    """The whole page as one HTML string (plotly.js inlined once)."""
    import plotly.io as pio

    name = f"journey-map-{m.task}-{m.segment}-{m.as_of:%Y%m%d}"
    figs = [pio.to_html(sankey_figure(m), include_plotlyjs=True, full_html=False, div_id="sankey",
                        config=_config(name + "-sankey")),
            pio.to_html(transition_graph_figure(m), include_plotlyjs=False, full_html=False, div_id="graph",
                        config=_config(name + "-graph"))] if len(m.flows) else []
    title = f"Journey map: {m.task} / {m.segment}, as of {m.as_of:%Y-%m-%d %H:%M} UTC"
    s = m.summary()
    kpis = "".join(f'<span class="kpi"><b>{v}</b>{html.escape(k)}</span>' for k, v in (
        ("journeys", f"{m.journeys:,}"), ("conversions", f"{m.conversions:,}"),
        ("conversion rate", _fmt(s["conversion_rate"], "%")), ("value", f"{m.value:,.0f}"),
        *((k, f"{v:,}") for k, v in sorted(m.statuses.items()))))
    top = m.top_friction
    headline = (f'<p id="headline"><b>Top friction:</b> {html.escape(top["sentence"])}.</p>' if top else "")
    parts = [f"<h1>{html.escape(title)}</h1>", f"<div>{kpis}</div>", headline,
             f'<p class="muted">Steps at the {html.escape(m.level)} level, attribution over '
             f"{html.escape(m.attribution_level)}. Camera icon on a figure: PNG for slides.</p>"]
    if figs:
        parts += ['<h2>Stage flows</h2>', figs[0], '<h2>Transition graph</h2>', figs[1]]
    parts += ["<h2>Friction (ranked by lost conversions)</h2>", html_table(m.friction, [
        ("rank", "#", "int"), ("step", "step", "text"), ("journeys", "journeys", "int"), ("exits", "exits", "int"),
        ("exit_rate", "exit rate", "%"), ("conversion_through", "conv. through", "%"),
        ("conversion_not_through", "conv. not through", "%"), ("median_hours_stuck", "median hours stuck", ""),
        ("lost_conversions", "lost conversions", ""), ("sentence", "", "text")], "friction", hot_first=True)]
    if m.attribution is not None:
        a = m.attribution
        cols = [("channel", "channel", "text")] + [(c, c, "text") for c in attribution_frame(m).columns[1:]]
        parts += [f"<h2>Attribution of {a.conversions:,} conversions</h2>",
                  f'<p class="muted">{a.journeys:,} journeys ({a.distinct_paths:,} distinct paths), null paths '
                  f"included; [{a.confidence:.0%} bootstrap interval, {a.bootstrap} resamples]. Markov: exact "
                  "removal effects from the absorbing chain.</p>",
                  html_table(attribution_frame(m), cols, "attribution"),
                  f"<h2>Attribution of value ({a.value:,.0f})</h2>",
                  html_table(attribution_frame(m, "value"), cols, "attribution-value")]
    path_cols = [("path", "path", "text"), ("journeys", "journeys", "int"), ("share", "share", "%"),
                 ("all_journeys_on_path", "all journeys on path", "int"), ("conversion_rate", "conv. rate", "%")]
    parts += ["<h2>Top paths to conversion</h2>", html_table(m.paths_to_conversion, path_cols, "paths-conversion"),
              "<h2>Top paths to drop-off</h2>", html_table(m.paths_to_drop_off, path_cols, "paths-drop-off")]
    parts += ["<h2>Did the actions work? (lift against the holdout)</h2>", html_table(m.lift, [
        ("action", "action", "text"), ("band", "band", "text"), ("segment", "segment", "text"),
        ("treated_n", "treated", "int"), ("treated_rate", "rate", "%"), ("holdout_n", "holdout", "int"),
        ("holdout_rate", "rate", "%"), ("difference", "difference", "%"), ("ci_low", "CI low", "%"),
        ("ci_high", "CI high", "%"), ("status", "status", "text")], "lift")]
    if m.next_step:
        n = m.next_step
        parts += ["<h2>Next-step prediction (held-out journeys)</h2>", html_table(pd.DataFrame([
            {"model": f"Markov order {n.order}", "top1": n.top1, "log_loss": n.log_loss},
            {"model": "order 0 (baseline)", "top1": n.baseline_top1, "log_loss": n.baseline_log_loss}]),
            [("model", "model", "text"), ("top1", "top-1 accuracy", "%"), ("log_loss", "log loss", "")], "next"),
            f'<p class="muted">{n.predictions:,} next steps of {n.test_journeys:,} held-out journeys; '
            f"fitted on {n.train_journeys:,}.</p>"]
    if not m.comparison.empty:
        c = m.comparison
        a_name = [x[:-2] for x in c.columns if x.endswith("_n")]
        cols = [("metric", "metric", "text"), ("step", "step", "text")]
        for x in a_name:
            cols += [(f"{x}_n", f"{x} n", "int"), (f"{x}_rate", f"{x} rate", "%")]
        cols += [("difference", "difference", "%"), ("p_value", "p", ""), ("significant", "significant", "text")]
        parts += ["<h2>Comparison</h2>", html_table(c, cols, "comparison")]
    if not m.committee.empty:
        parts += ["<h2>Buying committee: which role did what, and when</h2>", html_table(m.committee, [
            ("role", "role", "text"), ("accounts", "accounts", "int"), ("share", "share of accounts", "%"),
            ("conversion_with", "conv. with role", "%"), ("conversion_without", "conv. without", "%"),
            ("median_days_to_first_touch", "median days to first touch", ""),
            ("typical_stages", "typical stages", "text")], "committee")]
    sm = m.step_matrix.reset_index(names="step")
    parts += ["<h2>Step matrix (share of journeys at each step)</h2>",
              html_table(sm, [("step", "step", "text")] + [(c, str(c), "%") for c in sm.columns[1:]], "step-matrix")]
    if m.notes:
        parts.append("<p class='muted'>" + "<br>".join(html.escape(x) for x in m.notes) + "</p>")
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_CSS}</style></head><body>{''.join(parts)}</body></html>")


def write_report(m: JourneyMap, reports_dir: Path) -> tuple[Path, Path]:
    """Write the page and its JSON under ``reports_dir/journeys/<task>/<segment>/``."""
    d = Path(reports_dir) / SUBDIR / m.task / m.segment
    d.mkdir(parents=True, exist_ok=True)
    stem = f"journey_map_{m.as_of:%Y%m%dT%H%M}"
    h, j = d / f"{stem}.html", d / f"{stem}.json"
    h.write_text(render(m), encoding="utf-8")
    j.write_text(json.dumps(m.to_dict(), indent=1, default=str, allow_nan=False), encoding="utf-8")
    return h, j


@dataclass(frozen=True)
class MapFile:
    task: str
    segment: str
    as_of: str
    html: Path
    modified: datetime


def list_maps(reports_dir: Path) -> list[MapFile]:
    """Journey map pages under the reports folder, newest first."""
    from datetime import UTC

    root = Path(reports_dir) / SUBDIR
    out = []
    for p in root.glob("*/*/journey_map_*.html"):
        out.append(MapFile(p.parent.parent.name, p.parent.name, p.stem.removeprefix("journey_map_"), p,
                           datetime.fromtimestamp(p.stat().st_mtime, UTC)))
    return sorted(out, key=lambda f: (f.as_of, f.modified), reverse=True)


__all__ = ["render", "write_report", "list_maps", "MapFile", "sankey_figure", "transition_graph_figure",
           "attribution_frame", "html_table", "SUBDIR"]
