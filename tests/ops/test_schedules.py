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
