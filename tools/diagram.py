"""Draws docs/architecture.svg, the one diagram of processes, streams and groups (docs/architecture.md).

    python -m tools.diagram     # rewrites docs/architecture.svg; a test fails when the committed file differs

Boxes are placed on a grid of columns and rows; arrows are polylines between box sides.
"""

from __future__ import annotations

from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "docs" / "architecture.svg"


def draw() -> str:
    """The SVG text."""
    W, COL, BW, BH = 1060, 150, 124, 40

    def cx(i):
        return 12 + i * COL

    boxes = {}
    out = []

    def box(name, i, y, label, kind, sub=None, span=1):
        x = cx(i)
        w = BW + (span - 1) * COL
        boxes[name] = (x, y, w, BH)
        if kind == "stream":
            out.append(f'<rect x="{x}" y="{y}" width="{w}" height="{BH}" rx="18" class="stream"/>')
        elif kind == "outside":
            out.append(f'<rect x="{x}" y="{y}" width="{w}" height="{BH}" rx="4" class="outside"/>')
        else:
            out.append(f'<rect x="{x}" y="{y}" width="{w}" height="{BH}" rx="4" class="proc"/>')
        ty = y + (16 if sub else 25)
        out.append(f'<text x="{x + w / 2}" y="{ty}" class="t">{label}</text>')
        if sub:
            out.append(f'<text x="{x + w / 2}" y="{y + 32}" class="s">{sub}</text>')

    def edge(name, side, f=0.5):
        x, y, w, h = boxes[name]
        return {"l": (x, y + h * f), "r": (x + w, y + h * f), "t": (x + w * f, y), "b": (x + w * f, y + h)}[side]

    def arrow(points, label=None, at=None, cls="a", anchor="middle", head=True):
        d = " ".join(f"{x:.0f},{y:.0f}" for x, y in points)
        marker = ' marker-end="url(#m)"' if head else ""
        out.append(f'<polyline points="{d}" class="{cls}"{marker}/>')
        if label:
            lx, ly = at if at else ((points[0][0] + points[1][0]) / 2, (points[0][1] + points[1][1]) / 2 - 6)
            out.append(f'<text x="{lx:.0f}" y="{ly:.0f}" class="l" text-anchor="{anchor}">{label}</text>')

    Y0, Y1, Y2, Y3, Y5, Y6 = 20, 110, 190, 250, 390, 470
    box("pipeline", 1, Y0, "pipeline", "proc", "Airflow DAG, daily", span=1)
    box("events", 3, Y0, "model-events", "stream", "published, rollback, ...")
    box("client", 0, Y1, "REST client", "outside", "or a browser")
    box("gateway", 1, Y1, "gateway", "proc", "FastAPI")
    box("predict", 2, Y1, "predict", "stream")
    box("model", 3, Y1, "model replicas", "proc", "any number")
    box("quotes", 4, Y1, "quotes", "stream")
    box("decision", 5, Y1, "decision workers", "proc")
    box("signals", 6, Y1, "signals", "stream", "every decision")
    box("challenger", 3, Y2, "challenger replicas", "proc", "shadow only")
    box("shadow", 4, Y2, "shadow-quotes", "stream")
    box("reply", 5, Y2 + 20, "reply:&lt;id&gt;", "stream", "pub/sub, per gateway")
    box("changes", 6, Y2 + 20, "signal-changes", "stream", "a signal changed")
    box("updates", 6, Y3 + 30, "price-updates", "stream", "a price changed")
    box("notifier", 5, Y5, "notifier", "proc", "watchlist rules")
    box("alerts", 6, Y5, "alerts", "stream")
    box("hooks", 6, Y6, "your webhook", "outside", "signed POST")
    box("subs", 4, Y5, "your subscribers", "outside", "dashboards, notifiers")
    box("exporter", 0, Y6, "exporter", "proc", "-> Prometheus")
    box("replicas", 1, Y6, "replicas", "stream", "heartbeats (hash)")
    box("dead", 2, Y6, "dead-letter", "stream", "refused, with reason")

    arrow([edge("client", "r"), edge("gateway", "l")], "HTTP")
    arrow([edge("gateway", "r"), edge("predict", "l")], "XADD")
    arrow([edge("predict", "r"), edge("model", "l")], "model", at=(cx(3) - 13, Y1 + 34))
    arrow([edge("model", "r"), edge("quotes", "l")], "XADD")
    arrow([edge("quotes", "r"), edge("decision", "l")], "decision", at=(cx(5) - 13, Y1 + 34))
    arrow([edge("decision", "r"), edge("signals", "l")], "XADD")
    px = edge("predict", "b")[0]
    arrow(
        [edge("predict", "b"), (px, Y2 + 20), edge("challenger", "l")], "shadow", at=(px + 8, Y2 + 14), anchor="start"
    )
    arrow([edge("challenger", "r"), edge("shadow", "l")], "XADD")
    dx = cx(5) + BW - 20
    arrow([(dx, Y1 + BH), (dx, Y2 + 10), (cx(6) - 8, Y2 + 10), (cx(6) - 8, Y2 + 40), edge("changes", "l")])
    arrow([(cx(6) - 8, Y2 + 40), (cx(6) - 8, Y3 + 50), edge("updates", "l")])
    rx = cx(5) + 20
    arrow([(rx, Y1 + BH), edge("reply", "t", 20 / BW)], "PUBLISH", at=(rx + 4, Y2 + 6), anchor="start")
    gx = edge("gateway", "b", 0.7)[0]
    arrow(
        [edge("reply", "b"), (edge("reply", "b")[0], 288), (gx, 288), (gx, Y1 + BH)],
        "SUBSCRIBE: the answer",
        at=(gx + 6, 283),
        anchor="start",
    )
    arrow([edge("pipeline", "r"), edge("events", "l")], "XADD")
    arrow(
        [edge("events", "b", 0.3), edge("model", "t", 0.3)],
        "XREAD (each replica)",
        at=(cx(3) + BW * 0.3 + 6, Y1 - 20),
        anchor="start",
    )
    ex = cx(4) + BW / 2
    gap = cx(2) - 13
    pb = edge("pipeline", "b")
    arrow([edge("shadow", "b"), (ex, 270), (gap, 270), (gap, Y0 + BH + 16), (pb[0], Y0 + BH + 16), pb], cls="a dim")
    out.append(
        f'<text x="{cx(2) + 40}" y="{266}" class="l" text-anchor="start">read by the pipeline\'s lifecycle rule</text>'
    )
    nx = cx(6) + BW + 12
    arrow(
        [
            edge("changes", "r"),
            (nx, edge("changes", "r")[1]),
            (nx, Y5 - 30),
            (cx(5) + BW / 2, Y5 - 30),
            edge("notifier", "t"),
        ],
        "notifier",
        at=(cx(5) + BW / 2 + 6, Y5 - 8),
        anchor="start",
    )
    arrow([edge("updates", "r"), (nx, edge("updates", "r")[1])], head=False)
    arrow([edge("notifier", "r", 0.3), edge("alerts", "l", 0.3)], "XADD")
    arrow([edge("alerts", "l", 0.75), edge("notifier", "r", 0.75)], None)
    arrow(
        [edge("alerts", "b"), edge("hooks", "t")],
        "POST (retried)",
        at=(edge("alerts", "b")[0] + 6, Y6 - 10),
        anchor="start",
    )
    uy = edge("updates", "l", 0.85)[1]
    arrow(
        [edge("updates", "l", 0.85), (cx(4) + BW / 2, uy), edge("subs", "t")],
        "changes, updates: own groups, SSE",
        at=(cx(4) + BW / 2 + 6, uy + 14),
        anchor="start",
    )
    notes = (
        "every worker heartbeats into replicas and sets refused entries aside on",
        "dead-letter with the reason; the exporter reads every stream, group and heartbeat",
    )
    for n, note in enumerate(notes):
        out.append(f'<text x="{cx(3) + 10}" y="{Y6 + 16 + 14 * n}" class="l" text-anchor="start">{note}</text>')
    height = Y6 + BH + 16
    title = (
        "PokeWatch's processes (rectangles) and the Redis streams and channels they meet on (rounded, names "
        "without the pokewatch: prefix), with the consumer group of each read"
    )
    marker = (
        '<marker id="m" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#455a64"/></marker>'
    )
    style = """
.proc { fill: #e8eaf6; stroke: #3f51b5; stroke-width: 1.5 }
.stream { fill: #fff3e0; stroke: #ef6c00; stroke-width: 1.5 }
.outside { fill: #f5f5f5; stroke: #9e9e9e; stroke-width: 1.2; stroke-dasharray: 4 3 }
.t { font-size: 13px; font-weight: 600; text-anchor: middle; fill: #212121 }
.s { font-size: 10.5px; text-anchor: middle; fill: #555 }
.l { font-size: 10.5px; fill: #37474f; font-style: italic }
.a { fill: none; stroke: #455a64; stroke-width: 1.3 }
.dim { stroke-dasharray: 5 3 }
"""
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height}" width="{W}" height="{height}" '
        'font-family="sans-serif" role="img" aria-labelledby="title">'
    )
    svg = "\n".join(
        [
            head,
            f'<title id="title">{title}</title>',
            f"<style>{style}</style>",
            f"<defs>{marker}</defs>",
            *out,
            "</svg>",
            "",
        ]
    )
    return svg


if __name__ == "__main__":
    OUT.write_text(draw())
    print(f"wrote {OUT}")
