"""Draws the yardstick's chart: python bench/chart.py [--markdown] [RESULTS_JSON ...] > bench/throughput.svg.

One group per endpoint: a bar per results file (default bench/results/before.json and
after.json, as written by bench/throughput.sh), the spread of the rounds as a whisker and the
endpoint's target as a red mark. Plain SVG written by hand: no plotting library needed.
"""

from __future__ import annotations

import json
import sys
from html import escape
from pathlib import Path

COLOURS = ("#9aa5b1", "#2f6fb3", "#4caf50", "#e0a030")


TITLE = "Requests/s as a ratio to the bare Django view (median of interleaved rounds; whisker: spread; red: target)"


def main(paths: list[str]) -> str:
    return svg([json.loads(Path(p).read_text()) for p in paths if Path(p).exists()])


def svg(runs: list[dict], title: str = TITLE, legend_step: int = 170) -> str:
    """The chart of ``runs`` (each as a results file holds it: label, commit, endpoints); the
    legend's entries ``legend_step`` pixels apart."""
    names: list[str] = []
    for run in runs:
        names += [n for n in run["endpoints"] if n not in names]
    row, bar, left, width = 34, 12, 330, 560
    top = 40
    scale = width / max(1.0, max(e["ratio_max"] for run in runs for e in run["endpoints"].values()))
    height = top + row * len(names) + 50
    out = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 40}" height="{height}" '
            'font-family="sans-serif" font-size="12">'
        ),
        f'<text x="10" y="18" font-size="14">{escape(title)}</text>',
    ]
    for tick in range(11):
        x = left + tick / 10 * scale
        if x > left + width:
            break
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{height - 40}" stroke="#ddd"/>'
            f'<text x="{x:.1f}" y="{height - 25}" text-anchor="middle" font-size="10">{tick / 10:.1f}</text>'
        )
    for i, run in enumerate(runs):
        out.append(
            f'<rect x="{left + 10 + i * legend_step}" y="26" width="10" height="10" fill="{COLOURS[i]}"/>'
            f'<text x="{left + 24 + i * legend_step}" y="35">{escape(run["label"])} ({escape(run["commit"])})</text>'
        )
    for j, name in enumerate(names):
        y = top + j * row
        title = next(run["endpoints"][name]["endpoint"] for run in runs if name in run["endpoints"])
        out.append(f'<text x="{left - 6}" y="{y + row / 2 + 4}" text-anchor="end">{escape(title)}</text>')
        for i, run in enumerate(runs):
            e = run["endpoints"].get(name)
            if not e:
                continue
            by = y + 4 + i * (bar + 2)
            out.append(
                f'<rect x="{left}" y="{by}" width="{e["ratio_median"] * scale:.1f}" height="{bar}" '
                f'fill="{COLOURS[i]}"><title>{e["ratio_median"]:.3f} ({e["ratio_min"]:.3f}-'
                f"{e['ratio_max']:.3f})</title></rect>"
            )
            out.append(
                f'<line x1="{left + e["ratio_min"] * scale:.1f}" x2="{left + e["ratio_max"] * scale:.1f}" '
                f'y1="{by + bar / 2}" y2="{by + bar / 2}" stroke="black"/>'
            )
            out.append(
                f'<text x="{left + e["ratio_max"] * scale + 4:.1f}" y="{by + bar - 2}" font-size="10">'
                f"{e['ratio_median']:.2f}</text>"
            )
        target = next((run["endpoints"][name]["target"] for run in runs if name in run["endpoints"]), None)
        if target:
            x = left + target * scale
            out.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y + 1}" y2="{y + row - 1}" stroke="red" stroke-width="2"/>'
            )
    out.append("</svg>")
    return "\n".join(out)


def markdown(paths: list[str]) -> str:
    """The same figures as a Markdown table (bench/README.md)."""
    runs = [json.loads(Path(p).read_text()) for p in paths if Path(p).exists()]
    names: list[str] = []
    for run in runs:
        names += [n for n in run["endpoints"] if n not in names]
    lines = [
        "| endpoint | " + " | ".join(f"{run['label']} median (spread)" for run in runs) + " | target |",
        "|---|" + "---:|" * len(runs) + "---:|",
    ]
    for name in names:
        cells, target, title = [], None, name
        for run in runs:
            e = run["endpoints"].get(name)
            cells.append(f"{e['ratio_median']:.3f} ({e['ratio_min']:.3f}-{e['ratio_max']:.3f})" if e else "")
            if e:
                target, title = e["target"], e["endpoint"]
        lines.append(f"| `{title}` | " + " | ".join(cells) + f" | {'' if target is None else target} |")
    return "\n".join(lines)


if __name__ == "__main__":
    root = Path(__file__).resolve().parent
    args = sys.argv[1:]
    render = main
    if args[:1] == ["--markdown"]:
        render, args = markdown, args[1:]
    print(render(args or [str(root / "results/before.json"), str(root / "results/after.json")]))
