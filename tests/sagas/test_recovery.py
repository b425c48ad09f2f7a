"""A process dying between (or inside) saga steps, then ``manage.py recover_sagas``."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from core import aliases
from core.blog.models import UserProfile
from core.models import SagaRun, SagaStep
from core.services import saga
from core.services.registration import STEP_EVENT, STEP_PROFILE, STEP_USER, user_register
from core.users.models import User
from tests.sagas.faults import SimulatedCrash, last_saga, row_counts

DBS = [
    aliases.DEFAULT,
    aliases.USERS,
    aliases.ANALYTICS,
    aliases.CACHE,
]  # cache_db: deleting a user drops its cached stats


def crash_at(point: str, step: str):
    def hook(p: str, name: str) -> None:
        if (p, name) == (point, step):
            raise SimulatedCrash(f"process died at {point} {name}")

    return hook


def register_and_crash(point: str, step: str) -> SagaRun:
    with saga.step_hook(crash_at(point, step)), pytest.raises(SimulatedCrash):
        user_register(username="ada", email="ada@example.com")
    return last_saga()


def recover(older_than: str = "0s") -> str:
    out = StringIO()
    call_command("recover_sagas", "--older-than", older_than, stdout=out)
    return out.getvalue()


@pytest.mark.django_db(databases=DBS, transaction=True)
@pytest.mark.parametrize("step", [STEP_USER, STEP_PROFILE])
def test_crash_between_steps_is_undone_by_recover_sagas(step):
    before = row_counts()
    run = register_and_crash("after", step)
    assert run.status == SagaRun.Status.RUNNING
    assert User.objects.filter(username="ada").exists()  # left behind by the "dead" process
    output = recover()
    assert f"saga user_register #{run.pk}: compensated" in output
    assert row_counts() == before
    run.refresh_from_db()
    assert run.status == SagaRun.Status.COMPENSATED
    assert set(run.steps.values_list("status", flat=True)) == {SagaStep.Status.COMPENSATED}


@pytest.mark.django_db(databases=DBS, transaction=True)
@pytest.mark.parametrize("step", [STEP_USER, STEP_PROFILE, STEP_EVENT])
def test_crash_inside_a_step_before_commit_is_undone(step):
    """The step's payload is logged but its transaction never commits (the process died)."""
    before = row_counts()
    run = register_and_crash("before_commit", step)
    assert run.status == SagaRun.Status.RUNNING
    output = recover()
    assert f"#{run.pk}: compensated" in output
    assert row_counts() == before


@pytest.mark.django_db(databases=DBS, transaction=True)
def test_crash_before_a_step_wrote_anything_closes_the_step_as_failed():
    before = row_counts()
    run = register_and_crash("before", STEP_EVENT)
    recover()
    assert row_counts() == before
    statuses = dict(run.steps.values_list("name", "status"))
    assert statuses == {STEP_USER: "compensated", STEP_PROFILE: "compensated", STEP_EVENT: "failed"}


@pytest.mark.django_db(databases=DBS, transaction=True)
def test_recover_sagas_leaves_recent_runs_alone_and_is_idempotent():
    run = register_and_crash("after", STEP_PROFILE)
    assert "0 stale saga run(s) recovered" in recover("5m")
    assert User.objects.filter(username="ada").exists()
    SagaRun.objects.filter(pk=run.pk).update(updated_at=timezone.now() - dt.timedelta(minutes=10))
    assert "1 stale saga run(s) recovered, 0 failed" in recover("5m")
    assert "0 stale saga run(s) recovered" in recover("0s")  # nothing left to do
    assert not User.objects.filter(username="ada").exists()
    assert not UserProfile.objects.exists()


@pytest.mark.django_db(databases=DBS, transaction=True)
def test_recover_sagas_dry_run_changes_nothing():
    run = register_and_crash("after", STEP_USER)
    out = StringIO()
    call_command("recover_sagas", "--older-than", "0s", "--dry-run", stdout=out)
    assert f"saga user_register #{run.pk}: running" in out.getvalue()
    run.refresh_from_db()
    assert run.status == SagaRun.Status.RUNNING and User.objects.filter(username="ada").exists()


# --- a real process killed mid-saga --------------------------------------------------------------
CHILD = """
import os, sys, time
import django
django.setup()
from core.services import saga
from core.services.registration import user_register

def hang(point, name):
    if (point, name) == ("after", sys.argv[1]):
        print("READY", flush=True)
        time.sleep(120)

with saga.step_hook(hang):
    user_register(username="killed", email="killed@example.com")
"""


def _url(alias: str) -> str:
    from django.db import connections

    s = connections[alias].settings_dict
    vendor = connections[alias].vendor
    if vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    scheme = {"postgresql": "postgres", "mysql": "mysql"}[vendor]
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"{scheme}://{auth}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


@pytest.mark.django_db(databases=DBS, transaction=True)
def test_process_killed_between_steps_is_undone_by_recover_sagas():
    """A child process runs a registration against the test databases and is SIGKILLed after
    create_profile; recover_sagas then removes what it left."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    before = row_counts()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": _url(aliases.DEFAULT),
        "USERS_DATABASE_URL": _url(aliases.USERS),
        "ANALYTICS_DATABASE_URL": _url(aliases.ANALYTICS),
        "DB_POOL": "0",
    }
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, STEP_PROFILE],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = child.stdout.readline()
        assert line.strip() == "READY", child.stderr.read()
    finally:
        child.kill()  # SIGKILL: no Python clean-up runs in the child
        child.wait(10)
    assert User.objects.filter(username="killed").exists()
    run = last_saga()
    assert run.status == SagaRun.Status.RUNNING
    assert f"#{run.pk}: compensated" in recover()
    assert row_counts() == before
