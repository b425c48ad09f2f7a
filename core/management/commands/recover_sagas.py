"""Finish or undo sagas whose process died mid-way (see core/services/saga.py and docs/sagas.md)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.management.durations import parse_duration
from core.services import saga

HELP = """Finish or undo sagas left in progress by a process that died (killed, crashed, restarted).

A saga run whose log has not moved for --older-than (default SAGA_RECOVERY_AFTER_SECONDS, 300s) and
is still 'running', 'compensating' or 'failed' (a compensation that failed) is picked up: runs of
sagas that are undone on recovery (registration) are compensated step by step in reverse order;
runs of sagas that are finished on recovery (user deletion) get their remaining steps run. Each run
is claimed with a conditional update, so two copies of this command never act on the same run.
Prints one line per run; exits 1 when a run could not be finished or undone (it is retried next time).

Run it on a schedule, e.g. every 5 minutes:
  cron:     */5 * * * *  cd /srv/switchyard && .venv/bin/python manage.py recover_sagas
  systemd:  switchyard-recover-sagas.service (Type=oneshot, ExecStart=.../manage.py recover_sagas)
            + switchyard-recover-sagas.timer (OnCalendar=*:0/5, Persistent=true)
  k8s:      a CronJob with schedule "*/5 * * * *", concurrencyPolicy: Forbid, running
            ["python", "manage.py", "recover_sagas"] in the application image.
"""


class Command(BaseCommand):
    help = HELP

    def create_parser(self, prog_name, subcommand, **kwargs):  # type: ignore[no-untyped-def]
        from argparse import RawDescriptionHelpFormatter

        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.formatter_class = RawDescriptionHelpFormatter
        return parser

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument(
            "--older-than",
            type=parse_duration,
            default=None,
            help="only runs untouched for this long (e.g. 300s, 5m); default SAGA_RECOVERY_AFTER_SECONDS",
        )
        parser.add_argument("--limit", type=int, default=None, help="at most this many runs")
        parser.add_argument("--dry-run", action="store_true", help="list the stale runs, change nothing")

    def handle(self, *args, older_than=None, limit=None, dry_run=False, **options):  # type: ignore[no-untyped-def]
        if older_than is None:
            older_than = dt.timedelta(seconds=settings.SAGA_RECOVERY_AFTER_SECONDS)
        if limit is not None and limit < 1:
            raise CommandError("--limit must be at least 1")
        if dry_run:
            runs = saga.stale_runs(older_than=older_than)[:limit]
            for run in runs:
                self.stdout.write(f"saga {run.name} #{run.pk}: {run.status} since {run.updated_at:%Y-%m-%dT%H:%M:%SZ}")
            self.stdout.write(f"{len(runs)} stale saga run(s)")
            return
        outcomes = saga.recover(older_than=older_than, limit=limit)
        for outcome in outcomes:
            line = f"saga {outcome.name} #{outcome.saga_id}: {outcome.outcome}"
            self.stdout.write(line + (f" ({outcome.detail})" if outcome.detail else ""))
        failed = [o for o in outcomes if o.outcome == "failed"]
        self.stdout.write(f"{len(outcomes)} stale saga run(s) recovered, {len(failed)} failed")
        if failed:
            raise CommandError(f"{len(failed)} saga run(s) could not be finished or undone; will retry", returncode=1)
