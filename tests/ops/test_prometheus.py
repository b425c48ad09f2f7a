"""Metrics per instance, scraped by a real Prometheus (Debian's ``prometheus``).

Two instances behind nginx (``scripts/proxy``), each with two workers and a loopback port of its
own for the scraper (``SERVE_METRICS_PORTS``); Prometheus runs the committed scrape job
(``docker/prometheus/prometheus.local.yml.template``) against both. The test sends requests through
nginx and finds exactly that many in Prometheus, summed over the two instances, with no counter
reset; nginx itself refuses ``/metrics``; every query of the committed Grafana dashboard runs.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.ops.instances import ROOT, Instances

pytestmark = [pytest.mark.django_db(transaction=True, databases="__all__")]

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
TEMPLATE = ROOT / "docker" / "prometheus" / "prometheus.local.yml.template"
DASHBOARD = ROOT / "docker" / "grafana" / "switchyard-golden-signals.json"
ROUTE = "/health"


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class Prometheus:
    def __init__(self, tmp_path: Path, targets: list[str]) -> None:
        self.port = _free_ports(1)[0]
        self.dir = tmp_path / "prometheus"
        self.dir.mkdir()
        config = TEMPLATE.read_text()
        config = config.replace("${PROMETHEUS_SCRAPE_INTERVAL}", "1s")
        config = config.replace("${PROMETHEUS_TARGETS}", ", ".join(f'"{t}"' for t in targets))
        (self.dir / "prometheus.yml").write_text(config)
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Prometheus:
        self.log = (self.dir / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={self.dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        self.__exit__()
        raise RuntimeError("prometheus did not become ready:\n" + (self.dir / "prometheus.log").read_text()[-2000:])

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self.log.close()

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=5) as answer:
            body = json.load(answer)
        assert body["status"] == "success", body
        return body["data"]["result"]

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def scrapes_after(self, moment: float, timeout: float = 20) -> None:
        """Wait until every target was scraped after ``moment`` (a Unix time) and is up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            url = f"http://127.0.0.1:{self.port}/api/v1/targets"
            with urllib.request.urlopen(url, timeout=5) as answer:
                targets = json.load(answer)["data"]["activeTargets"]
            if targets and all(t["health"] == "up" and _unix(t["lastScrape"]) > moment + 0.2 for t in targets):
                return
            time.sleep(0.3)
        raise AssertionError(f"not every target was scraped after the traffic: {targets}")


def _unix(rfc3339: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")[:26] + "+00:00").timestamp()


@pytest.mark.skipif(not os.path.exists(PROMETHEUS), reason="Debian's prometheus is not installed")
def test_prometheus_scrapes_each_instance_and_counts_the_traffic(tmp_path: Path) -> None:
    ports = _free_ports(2)
    env = {
        "METRICS_ENABLED": "1",
        "METRICS_TOKEN": "",
        "SERVE_METRICS_PORTS": ",".join(map(str, ports)),
        "WEB_CONCURRENCY": "2",
    }
    with (
        Instances(tmp_path, count=2, env=env) as service,
        Prometheus(tmp_path, [f"127.0.0.1:{port}" for port in ports]) as prometheus,
    ):
        # nginx refuses /metrics: through the balancer the two instances' counters would alternate.
        status, headers, _ = service.request("GET", "/metrics")
        assert status == 404
        assert headers["Content-Type"].startswith("application/problem+json")
        # Each instance answers on its own address.
        for port in ports:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
                text = answer.read().decode()
            assert "# TYPE switchyard_http_requests_total counter" in text
            assert "# TYPE switchyard_db_breaker_failing gauge" in text

        series = f'switchyard_http_requests_total{{job="switchyard",route="{ROUTE}",method="GET",status="200"}}'
        before_moment = time.time()
        prometheus.scrapes_after(before_moment)
        before = prometheus.value(f"sum({series})") or 0.0

        sent = 120
        for _ in range(sent):
            assert service.request("GET", ROUTE)[0] == 200
        prometheus.scrapes_after(time.time())

        after = prometheus.value(f"sum({series})")
        assert after is not None
        assert after - before == sent
        # One series per instance (never one that alternates), both served some of the traffic
        # (nginx balances), and no counter went backwards.
        per_instance = {r["metric"]["instance"]: float(r["value"][1]) for r in prometheus.query(series)}
        assert set(per_instance) == {f"127.0.0.1:{port}" for port in ports}
        assert all(value > 0 for value in per_instance.values())
        assert prometheus.value(f"sum(resets({series}[5m]))") == 0
        assert prometheus.value('sum(up{job="switchyard"})') == 2
        # A request rate that matches: over the scrapes, the rate is above zero on both instances.
        rates = prometheus.query(f"rate({series}[1m])")
        assert len(rates) == 2 and all(float(r["value"][1]) > 0 for r in rates)

        # Every panel of the committed Grafana dashboard is a query Prometheus runs.
        dashboard = json.loads(DASHBOARD.read_text())
        exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
        assert exprs
        for expr in exprs:
            prometheus.query(expr)
