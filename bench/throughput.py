"""Ratios of bench/throughput.sh: python bench/throughput.py ROUNDS_TXT OUT_JSON [--label L].

ROUNDS_TXT has one line per wrk run: ``round name requests/s non-2xx [cpu-us]``; ``bare`` (the
bare project's plain Django view) opens every round and one more bare run closes the last. A
round's ratio for an endpoint is its requests/s over the mean of the bare figures before and after
it (the bare runs bracket the round, cancelling a drift of the machine's speed); the result is the
median round with the spread (min-max of the rounds). Prints a table; writes the JSON
bench/chart.py reads.

``cpu-us`` (optional) is the machine's busy CPU time per request of the run (every process: wrk,
the servers, the databases, the kernel). Its ratio, the bare view's CPU per request (mean of the
bracketing runs) over the endpoint's, is what the requests/s ratio would be on a machine kept
busy. It removes one part of the noise of this yardstick and not the other (bench/README.md,
session 12): with 8 keep-alive connections and 2 gthread workers, the connections of a run are
sometimes shared unevenly; a run can then leave a core idle (requests/s falls, CPU per request
does not: the CPU ratio is unmoved), but the same code also costs more CPU per request in some
runs than in others (both ratios move).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

#: name -> (what the README's table calls it, target ratio or None)
ENDPOINTS: dict[str, tuple[str, float | None]] = {
    "bare_drf": ("bare DRF APIView", None),
    "health": ("/health (middleware only)", None),
    "user": ("GET /api/v1/users/{id}/", 0.30),
    "post": ("GET /api/v1/posts/{id}/", 0.30),
    "users_list": ("GET /api/v1/users/?page_size=50", 0.15),
    "posts_list": ("GET /api/v1/posts/?page_size=20", 0.15),
    "events_list": ("GET /api/v1/analytics/events/?page_size=50", 0.15),
    "events_summary": ("GET /api/v1/analytics/events/summary/", 0.15),  # issue 14
    "customers_list": ("GET /api/v1/legacy/customers/?page_size=50", 0.15),
    "dashboard": ("GET /api/v1/users/{id}/dashboard/", 0.20),
    "user_stats": ("GET /api/v1/users/{id}/stats/ (cached)", 0.35),
    "stats": ("GET /api/v1/stats/ (cached)", 0.35),
    "post_create": ("POST /api/v1/posts/", 0.12),
    "events_batch": ("POST /api/v1/analytics/events/batch/ (1,000 events)", None),
    # bench/floor/: not the service (no middleware, no authentication), what the targets sit above
    "floor_read": ("floor: a user by id, Django cursor + JsonResponse", None),
    "floor_drf_read": ("floor: a user by id, bare DRF APIView", None),
    "floor_list": ("floor: 50 users, Django cursor + JsonResponse", None),
    "floor_drf_list": ("floor: 50 users, bare DRF APIView", None),
    # the same two bare DRF views behind the service's settings and middleware (floor_mw_settings)
    "floor_mw_read": ("floor behind the service's middleware: a user, bare DRF", None),
    "floor_mw_list": ("floor behind the service's middleware: 50 users, bare DRF", None),
}


def analyse(lines: list[str]) -> dict[str, dict]:
    rounds: dict[int, dict[str, tuple[float, int]]] = {}
    cpu: dict[int, dict[str, float]] = {}
    for line in lines:
        if line.strip():
            r, name, rps, bad, *rest = line.split()
            rounds.setdefault(int(r), {})[name] = (float(rps), int(float(bad)))
            if rest and float(rest[0]) > 0:
                cpu.setdefault(int(r), {})[name] = float(rest[0])

    rps = {r: {name: figure[0] for name, figure in got.items()} for r, got in rounds.items()}

    def bracket(r: int, figures: dict[int, dict[str, float]]) -> float | None:
        """The mean of the bare runs that open round ``r`` and the next one (or the first alone)."""
        before = figures.get(r, {}).get("bare")
        after = figures.get(r + 1, {}).get("bare")
        if before is None:
            return None
        return (before + after) / 2 if after is not None else before

    out: dict[str, dict] = {}
    names = {name for got in rounds.values() for name in got}
    catalogue = {}
    for name, (title, target) in ENDPOINTS.items():
        catalogue[name] = (title, target)
        if f"{name}~alt" in names:  # the compared variant (BENCH_COMPARE_ENV): no target of its own
            catalogue[f"{name}~alt"] = (f"{title} [alt]", None)
    for name, (title, target) in catalogue.items():
        runs = [(got[name], bracket(r, rps)) for r, got in sorted(rounds.items()) if name in got]
        if not runs:
            continue
        ratios = [rps / bare for (rps, _), bare in runs]
        # CPU per request: the bare view's over the endpoint's (lower CPU per request: higher ratio)
        cpu_ratios = [
            bare_cpu / cpu[r][name] for r in sorted(cpu) if name in cpu[r] and (bare_cpu := bracket(r, cpu)) is not None
        ]
        out[name] = {
            "endpoint": title,
            "target": target,
            "ratio_median": round(statistics.median(ratios), 4),
            "ratio_min": round(min(ratios), 4),
            "ratio_max": round(max(ratios), 4),
            "ratios": [round(x, 4) for x in ratios],
            "rps": [rps for (rps, _), _ in runs],
            "bare_rps": [round(bare, 1) for _, bare in runs],
            "non_2xx": sum(bad for (_, bad), _ in runs),
        }
        if cpu_ratios:
            out[name].update(
                cpu_ratio_median=round(statistics.median(cpu_ratios), 4),
                cpu_ratio_min=round(min(cpu_ratios), 4),
                cpu_ratio_max=round(max(cpu_ratios), 4),
                cpu_us=[cpu[r][name] for r in sorted(cpu) if name in cpu[r]],
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("rounds")
    parser.add_argument("out")
    parser.add_argument("--label", default="run")
    parser.add_argument("--commit", default="")
    parser.add_argument("--setup", default="")
    args = parser.parse_args()
    with open(args.rounds) as f:
        results = analyse(f.readlines())
    bare = sorted({b for r in results.values() for b in r["bare_rps"]})
    doc = {
        "label": args.label,
        "commit": args.commit,
        "setup": args.setup,
        "bare_rps_range": [bare[0], bare[-1]] if bare else [],
        "endpoints": results,
    }
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)
    print(f"{args.label} ({args.commit}; {args.setup}); bare view {doc['bare_rps_range']} req/s")
    print(f"{'endpoint':58} {'median':>7} {'spread':>13} {'target':>7}   {'CPU ratio':>9} {'spread':>13}")
    failed = False
    for r in results.values():
        met = "" if r["target"] is None else ("met" if r["ratio_median"] >= r["target"] else "NOT met")
        by_cpu = (
            f"{r['cpu_ratio_median']:9.3f} {r['cpu_ratio_min']:6.3f}-{r['cpu_ratio_max']:.3f}"
            if "cpu_ratio_median" in r
            else ""
        )
        print(
            f"{r['endpoint']:58} {r['ratio_median']:7.3f} {r['ratio_min']:6.3f}-{r['ratio_max']:.3f}"
            f" {'' if r['target'] is None else r['target']:>7} {met:7} {by_cpu}"
            + (f"  ({r['non_2xx']} non-2xx!)" if r["non_2xx"] else "")
        )
        failed |= bool(r["non_2xx"])
    print(f"written: {args.out}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
