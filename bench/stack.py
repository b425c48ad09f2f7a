"""The helpers of bench/stack.sh (the yardstick through the whole stack).

    python bench/stack.py tokens N FILE            # N bench tokens in FILE (Django: the stack's environment)
    python bench/stack.py bare-server OUT LISTEN SOCKET...   # the bare view's nginx server block
    python bench/stack.py analyse ROUNDS_TXT OUT_JSON [--label L] [--commit C] [--setup S]
    python bench/stack.py chart RESULTS_JSON... > bench/stack.svg   # one bar per file and connections
    python bench/stack.py markdown RESULTS_JSON    # the table of bench/README.md

``bare-server`` renders docker/nginx/switchyard.conf.template itself, unchanged but for its
``map`` blocks (http-level, already defined by the stack's own copy) and the upstream's name, with
the bare project's gunicorn sockets as its servers: the bare view goes through the very ``server``
the service goes through (timeouts, buffers, gzip, headers), in the same nginx process.

ROUNDS_TXT has one line per wrk run: ``round connections name requests/s non-2xx requests
p50-ms p99-ms load-1min``. Per number of connections the ratios are bench/throughput.py's
(``analyse``: each round's requests/s over the mean of the bare runs before and after it; median
and spread of the rounds); the latencies are the median of the rounds' p50 and p99, with their
spread.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import chart, throughput

TEMPLATE = ROOT / "docker/nginx/switchyard.conf.template"
UPSTREAM = "switchyard_bench_bare"


def tokens(count: int, path: str) -> None:
    """``count`` new tokens of the account ``bench`` (the scopes bench/seed_bench.py gives), one a line."""
    import django

    django.setup()
    from core.tokens.services import token_create

    scopes = ("read", "posts:write", "events:write", "registrations:write")
    keys = [token_create(username="bench", scopes=scopes).key for _ in range(count)]
    out = Path(path)
    out.write_text("".join(f"{key}\n" for key in keys))
    out.chmod(0o600)
    print(f"{count} tokens of the account bench in {out}")


def bare_server(out: str, listen: str, sockets: list[str]) -> None:
    text = TEMPLATE.read_text()
    # The maps are http-level: the stack's switchyard.conf defines them once for both servers.
    text = re.sub(r"^map [^{]*\{.*?^\}\n", "", text, flags=re.MULTILINE | re.DOTALL)
    text = text.replace("upstream switchyard {", f"upstream {UPSTREAM} {{")
    text = text.replace("proxy_pass http://switchyard;", f"proxy_pass http://{UPSTREAM};")
    if "map " in text or "http://switchyard;" in text:
        raise SystemExit(f"{TEMPLATE}: a map or an upstream reference left after the renaming")
    servers = "".join(f" server unix:{socket} max_fails=0;" for socket in sockets)
    # The template's variables: the listen address and the upstream are the bench's; the others
    # are the values scripts/proxy gives (MAX_BODY_BYTES & co. at their defaults).
    values = {
        "NGINX_LISTEN": listen,
        "NGINX_UPSTREAM_SERVERS": servers,
        "NGINX_STATIC_ROOT": "/nonexistent",
        "NGINX_ERRORS_ROOT": str(ROOT / "docker/nginx/errors"),
        "NGINX_MAX_BODY_BYTES": "5242880",
        "NGINX_BATCH_MAX_BODY_BYTES": "33554432",
        "NGINX_CLIENT_HEADER_TIMEOUT": "10",
        "NGINX_CLIENT_BODY_TIMEOUT": "10",
        "NGINX_PROXY_READ_TIMEOUT": "35",
    }
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    if "${" in text:
        raise SystemExit(f"{TEMPLATE}: a variable left unrendered: {re.findall(r'[$][{][A-Z_]+[}]', text)}")
    Path(out).write_text("# The bare view for bench/stack.sh (bench/stack.py bare-server): not the service.\n" + text)


def analyse(lines: list[str]) -> dict:
    by_conn: dict[int, list[str]] = {}
    latency: dict[tuple[int, str], list[tuple[float, float]]] = {}
    loads: list[float] = []
    for line in lines:
        if not line.strip():
            continue
        r, conn, name, rps, bad, _requests, p50, p99, load = line.split()
        by_conn.setdefault(int(conn), []).append(f"{r} {name} {rps} {bad}")
        latency.setdefault((int(conn), name), []).append((float(p50), float(p99)))
        loads.append(float(load))
    out: dict = {}
    for conn, rows in sorted(by_conn.items()):
        figures = throughput.analyse(rows)
        bare_rps = [float(row.split()[2]) for row in rows if row.split()[1] == "bare"]
        figures = {
            "bare": {
                "endpoint": "bare Django view, through the same nginx",
                "target": None,
                "rps": bare_rps,
                "ratio_median": 1.0,
                "ratio_min": 1.0,
                "ratio_max": 1.0,
                "non_2xx": 0,
            },
            **figures,
        }
        for name, e in figures.items():
            e["rps_median"] = round(statistics.median(e["rps"]), 1)
            e["rps_min"], e["rps_max"] = min(e["rps"]), max(e["rps"])
            lat = latency[(conn, name)]
            for i, which in enumerate(("p50", "p99")):
                values = [x[i] for x in lat]
                e[f"{which}_ms"] = values
                e[f"{which}_ms_median"] = round(statistics.median(values), 2)
        out[str(conn)] = figures
    return {"connections": out, "load_1min": loads}


def fmt_ms(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


def markdown(doc: dict) -> str:
    lines = [
        "| endpoint | conns | req/s median (spread) | ratio to bare via nginx (spread) | p50 ms (spread) | p99 ms (spread) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    names: list[str] = []
    for figures in doc["connections"].values():
        names += [n for n in figures if n not in names]
    for name in names:
        for conn, figures in doc["connections"].items():
            e = figures.get(name)
            if not e:
                continue
            ratio = "1" if name == "bare" else f"{e['ratio_median']:.3f} ({e['ratio_min']:.3f}-{e['ratio_max']:.3f})"
            lines.append(
                f"| `{e['endpoint']}` | {conn} | {e['rps_median']:.0f} ({e['rps_min']:.0f}-{e['rps_max']:.0f}) | {ratio} "
                f"| {fmt_ms(e['p50_ms'])} | {fmt_ms(e['p99_ms'])} |"
                + (f" {e['non_2xx']} non-2xx" if e["non_2xx"] else "")
            )
    return "\n".join(lines)


def draw(docs: list[dict]) -> str:
    """One bar per results file and number of connections (at most four), per endpoint."""
    runs = [
        {
            "label": f"{doc['label']} c{conn}",
            "commit": doc["commit"],
            "endpoints": {n: e for n, e in figures.items() if n != "bare"},
        }
        for doc in docs
        for conn, figures in doc["connections"].items()
    ]
    return chart.svg(
        runs,
        "Through the stack: req/s over the bare view's via the same nginx (median of rounds; whisker: spread;"
        " red: target)",
        legend_step=135,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("tokens")
    p.add_argument("count", type=int)
    p.add_argument("file")
    p = sub.add_parser("bare-server")
    p.add_argument("out")
    p.add_argument("listen")
    p.add_argument("sockets", nargs="+")
    p = sub.add_parser("analyse")
    p.add_argument("rounds")
    p.add_argument("out")
    p.add_argument("--label", default="run")
    p.add_argument("--commit", default="")
    p.add_argument("--setup", default="")
    sub.add_parser("chart").add_argument("results", nargs="+")
    sub.add_parser("markdown").add_argument("results")
    args = parser.parse_args()

    if args.command == "tokens":
        tokens(args.count, args.file)
    elif args.command == "bare-server":
        bare_server(args.out, args.listen, args.sockets)
    elif args.command == "chart":
        print(draw([json.loads(Path(path).read_text()) for path in args.results]))
    elif args.command == "markdown":
        print(markdown(json.loads(Path(args.results).read_text())))
    else:
        doc = {"label": args.label, "commit": args.commit, "setup": args.setup}
        doc.update(analyse(Path(args.rounds).read_text().splitlines()))
        loads = doc["load_1min"]
        doc["load_1min_range"] = [min(loads), max(loads)] if loads else []
        Path(args.out).write_text(json.dumps(doc, indent=1))
        print(f"{args.label} ({args.commit}; {args.setup}); 1-min load average {doc['load_1min_range']}")
        print(markdown(doc))
        print(f"written: {args.out}")
        bad = sum(e["non_2xx"] for figures in doc["connections"].values() for e in figures.values())
        sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
