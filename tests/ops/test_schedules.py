"""The scheduler's crontab (docker/scheduler/crontab, run by supercronic in compose): the schedules
the docs promise, and every command in it runs as written against the real databases."""

from __future__ import annotations

import shlex
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from core import aliases

ROOT = Path(__file__).resolve().parents[2]
ALL = [aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS, aliases.LEGACY, aliases.CACHE]


def entries() -> list[tuple[str, list[str]]]:
    out = []
    for line in (ROOT / "docker" / "scheduler" / "crontab").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            fields = line.split()
            out.append((" ".join(fields[:5]), shlex.split(" ".join(fields[5:]))))
    return out


def test_recover_sagas_every_five_minutes_and_maintenance_daily() -> None:
    schedule = {argv[2]: when for when, argv in entries()}
    assert schedule["recover_sagas"] == "*/5 * * * *"
    minute, hour, *rest = schedule["dbmaint"].split()
    assert minute.isdigit() and hour.isdigit() and rest == ["*", "*", "*"]
    assert all(argv[:2] == ["python", "manage.py"] for _, argv in entries())
    for daily in ("analytics_partitions", "check_references"):
        minute, hour, *rest = schedule[daily].split()
        assert minute.isdigit() and hour.isdigit() and rest == ["*", "*", "*"], daily


@pytest.mark.real_engines
@pytest.mark.django_db(transaction=True, databases=ALL)
@pytest.mark.parametrize("argv", [argv for _, argv in entries()], ids=lambda argv: argv[2])
def test_each_scheduled_command_runs(argv: list[str]) -> None:
    out = StringIO()
    call_command(*argv[2:], stdout=out, stderr=out)
    text = out.getvalue()
    assert "failed" not in text.replace("0 failed", "") and "error" not in text.lower(), text


def run_scheduler(crontab: Path, seconds: float) -> tuple[int, str]:
    """scripts/scheduler on ``crontab`` for at most ``seconds``, then SIGTERM: (exit code, output)."""
    import signal
    import subprocess
    import sys
    import time

    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "scheduler"), str(crontab)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + seconds
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    return process.returncode, output


def test_the_stack_scheduler_reads_the_crontab_and_stops_on_sigterm() -> None:
    """scripts/scheduler (scripts/stack's, in place of supercronic) takes every line of the file and
    names each one's next time; SIGTERM stops it cleanly. (It runs a line at its time in
    tests/ops/test_stack.py.)"""
    code, output = run_scheduler(ROOT / "docker" / "scheduler" / "crontab", 3)
    assert code == 0, output
    assert f"{len(entries())} job(s) from" in output
    for when, argv in entries():
        assert f"schedule={when!r} next=" in output and " ".join(argv) in output
    assert output.rstrip().endswith("scheduler stopped")


def test_the_stack_scheduler_refuses_a_line_it_cannot_read(tmp_path: Path) -> None:
    crontab = tmp_path / "crontab"
    crontab.write_text("*/5 * * * * python manage.py recover_sagas\n@reboot python manage.py dbmaint\n")
    code, output = run_scheduler(crontab, 10)
    assert code != 0
    assert f"{crontab}:2: not 'minute hour day month weekday command'" in output
