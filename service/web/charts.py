"""Server-side SVG charts (no JavaScript): horizontal bars, lines over time, a funnel, progress.

Every function returns one ``<svg>`` element as :class:`markupsafe.Markup`; every text in it
(labels, titles, numbers) is escaped here, so callers pass plain strings. Charts draw in a
narrow coordinate system (360 units wide, text 13 units) and scale with the page
(``class="chart"``: full width, capped on desktop), so they stay readable at 375 px. Colours
and sizes are SVG presentation attributes, not ``style``: the pages' CSP forbids inline styles.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

WIDTH = 360
FONT = 13
ROW = 22
LABEL_W = 112
PALETTE = ("#1d5fbf", "#e07b00", "#1e7b34", "#b42318", "#7c3aed", "#0e7490", "#616e7c")
AXIS = "#9aa5b1"
TEXT = "#1f2933"


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def fmt(value: float) -> str:
    """A number as the charts print it (integers without decimals, else one decimal)."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` display units (CJK counts 2, others 1) with an ellipsis."""
    out: list[str] = []
    used = 0
    for ch in text:
        used += 2 if ord(ch) > 0x2E80 else 1
        if used > limit:
            return "".join(out) + "…"
        out.append(ch)
    return text


def _svg(height: float, title: str, body: list[str], *, chart_id: str = "") -> Markup:
    ident = f' id="{_e(chart_id)}"' if chart_id else ""
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart"{ident} role="img" '
        f'viewBox="0 0 {WIDTH} {height:.0f}" font-size="{FONT}" '
        f'font-family="Noto Sans CJK SC, WenQuanYi Micro Hei, sans-serif">'
        f"<title>{_e(title)}</title>"
    )
    return Markup(head + "".join(body) + "</svg>")


def _empty(title: str, chart_id: str) -> Markup:
    return _svg(
        40,
        title,
        [f'<text x="{WIDTH / 2}" y="24" text-anchor="middle" fill="{AXIS}">暂无数据</text>'],
        chart_id=chart_id,
    )


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    chart_id: str = "",
    color: str = PALETTE[0],
) -> Markup:
    """Horizontal bars, one row per label, the value printed after each bar.

    Parameters
    ----------
    labels, values : same length; bars are drawn in the given order.
    title : the chart's accessible name (``<title>``).
    """
    if len(labels) != len(values):
        raise ValueError("labels and values must have the same length")
    if not labels:
        return _empty(title, chart_id)
    top = max(max(values), 0) or 1
    span = WIDTH - LABEL_W - 56
    body = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = 6 + i * ROW
        w = max(span * max(value, 0) / top, 0)
        body.append(
            f'<g class="bar" data-label="{_e(label)}" data-value="{_e(fmt(value))}">'
            f"<title>{_e(label)}：{_e(fmt(value))}</title>"
            f'<text x="{LABEL_W - 6}" y="{y + 14}" text-anchor="end" fill="{TEXT}">'
            f"{_e(_clip(label, 16))}</text>"
            f'<rect x="{LABEL_W}" y="{y + 2}" width="{w:.1f}" height="{ROW - 6}" rx="2" '
            f'fill="{_e(color)}"/>'
            f'<text x="{LABEL_W + w + 4:.1f}" y="{y + 14}" fill="{TEXT}">{_e(fmt(value))}</text>'
            "</g>"
        )
    body.append(
        f'<line x1="{LABEL_W}" y1="4" x2="{LABEL_W}" y2="{8 + len(labels) * ROW}" stroke="{AXIS}"/>'
    )
    return _svg(12 + len(labels) * ROW, title, body, chart_id=chart_id)


def progress_chart(value: float, target: float, *, title: str, chart_id: str = "") -> Markup:
    """One bar of ``value`` against ``target`` with the share printed (e.g. 配对 312 / 1,000)."""
    share = value / target if target > 0 else 0.0
    w = (WIDTH - 20) * min(share, 1.0)
    if value > 0:
        w = max(w, 3.0)  # a small share stays visible
    text = f"{fmt(value)} / {fmt(target)}（{share:.1%}）"
    body = [
        f'<rect x="10" y="8" width="{WIDTH - 20}" height="22" rx="4" fill="#eef2f7" '
        f'stroke="{AXIS}"/>',
        f'<rect class="progress" x="10" y="8" width="{w:.1f}" height="22" rx="4" '
        f'fill="{PALETTE[2]}" data-value="{_e(fmt(value))}" data-target="{_e(fmt(target))}"/>',
        f'<text x="{WIDTH / 2}" y="48" text-anchor="middle" fill="{TEXT}">{_e(text)}</text>',
    ]
    return _svg(58, title, body, chart_id=chart_id)


def _legend(names: Sequence[str], y0: float) -> tuple[list[str], float]:
    """Legend swatches, wrapped into rows of three; returns the parts and the height used."""
    parts, per_row, col_w = [], 3, (WIDTH - 20) / 3
    for i, name in enumerate(names):
        x = 10 + (i % per_row) * col_w
        y = y0 + (i // per_row) * 18
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="10" height="10" '
            f'fill="{PALETTE[i % len(PALETTE)]}"/>'
            f'<text x="{x + 14:.1f}" y="{y + 10:.1f}" fill="{TEXT}">{_e(_clip(name, 14))}</text>'
        )
    return parts, ((len(names) + per_row - 1) // per_row) * 18


def line_chart(
    x_labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    title: str,
    chart_id: str = "",
) -> Markup:
    """Lines over ``x_labels`` (e.g. months), one per ``(name, values)`` series, with a legend.

    A single x value is drawn as dots. Every other x label is dropped when they would touch.
    """
    if not x_labels or not series:
        return _empty(title, chart_id)
    if any(len(v) != len(x_labels) for _, v in series):
        raise ValueError("every series needs one value per x label")
    left, right, top_y, plot_h = 34.0, 10.0, 10.0, 150.0
    top = max((max(v) for _, v in series), default=0) or 1
    n = len(x_labels)
    step = (WIDTH - left - right) / max(n - 1, 1)

    def px(i: int) -> float:
        return left + (i * step if n > 1 else (WIDTH - left - right) / 2)

    def py(v: float) -> float:
        return top_y + plot_h * (1 - v / top)

    body = [
        f'<line x1="{left}" y1="{top_y + plot_h}" x2="{WIDTH - right}" y2="{top_y + plot_h}" '
        f'stroke="{AXIS}"/>',
        f'<line x1="{left}" y1="{top_y}" x2="{left}" y2="{top_y + plot_h}" stroke="{AXIS}"/>',
        f'<text x="{left - 4}" y="{top_y + 4}" text-anchor="end" fill="{TEXT}">{_e(fmt(top))}</text>',
        f'<text x="{left - 4}" y="{top_y + plot_h}" text-anchor="end" fill="{TEXT}">0</text>',
    ]
    every = max(1, -(-n * 44 // int(WIDTH - left - right)))  # ~44 units per label
    for i, lab in enumerate(x_labels):
        if i % every == 0:
            body.append(
                f'<text x="{px(i):.1f}" y="{top_y + plot_h + 16}" text-anchor="middle" '
                f'fill="{TEXT}" font-size="10">{_e(lab)}</text>'
            )
    for k, (name, values) in enumerate(series):
        color = PALETTE[k % len(PALETTE)]
        points = " ".join(f"{px(i):.1f},{py(v):.1f}" for i, v in enumerate(values))
        body.append(f'<g class="series" data-name="{_e(name)}">')
        if n > 1:
            body.append(
                f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>'
            )
        for i, v in enumerate(values):
            body.append(
                f'<circle cx="{px(i):.1f}" cy="{py(v):.1f}" r="2.5" fill="{color}">'
                f"<title>{_e(name)} {_e(x_labels[i])}：{_e(fmt(v))}</title></circle>"
            )
        body.append("</g>")
    legend, used = _legend([name for name, _ in series], top_y + plot_h + 28)
    return _svg(top_y + plot_h + 34 + used, title, body + legend, chart_id=chart_id)


def funnel_chart(
    labels: Sequence[str], values: Sequence[float], *, title: str, chart_id: str = ""
) -> Markup:
    """A funnel: centred bars shrinking with the values, each with its count and its share of
    the first stage."""
    if len(labels) != len(values):
        raise ValueError("labels and values must have the same length")
    if not labels:
        return _empty(title, chart_id)
    first = values[0] or 1
    top = max(max(values), 0) or 1
    full, h = WIDTH - 20, 34
    body = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        w = full * max(value, 0) / top
        x, y = (WIDTH - w) / 2, 6 + i * (h + 6)
        share = value / first if values[0] else 0.0
        body.append(
            f'<g class="stage" data-label="{_e(label)}" data-value="{_e(fmt(value))}">'
            f'<rect x="10" y="{y}" width="{full}" height="{h}" rx="3" fill="#eef2f7"/>'
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{h}" rx="3" '
            f'fill="{PALETTE[i % len(PALETTE)]}" fill-opacity="0.85"/>'
            f'<text x="{WIDTH / 2}" y="{y + 22}" text-anchor="middle" fill="{TEXT}" '
            f'stroke="#fff" stroke-width="3" paint-order="stroke">'
            f"{_e(label)} {_e(fmt(value))}（{share:.0%}）</text></g>"
        )
    return _svg(10 + len(labels) * (h + 6), title, body, chart_id=chart_id)
