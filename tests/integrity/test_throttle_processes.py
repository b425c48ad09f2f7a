"""The per-token budget holds across processes sharing Redis (issue 11): several real processes
burst on one token at the same moment and together admit exactly the budget."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
import redis
from django.conf import settings
from django.test import override_settings

from api import throttling

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("SWITCHYARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")


def redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.mark.skipif(not redis_up(), reason=f"no Redis at {REDIS_URL}")
@pytest.mark.parametrize("processes,per_process,budget", [(4, 60, 50), (6, 40, 100)])
def test_processes_sharing_redis_admit_exactly_the_budget(processes: int, per_process: int, budget: int) -> None:
    prefix = f"h11-throttle-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "core.settings",
        "CACHE_URL": REDIS_URL,
        "CACHE_KEY_PREFIX": prefix,
        # per hour: a refill every 36 s or more, none during the burst
        "API_THROTTLE_RATE": f"{budget}/hour",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or "throttle-test-not-secret",
    }
    env.pop("API_THROTTLE_CACHE", None)
    start_at = time.time() + 3.0  # every process imported Django and waits for this moment
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.integrity.throttle_worker",
                repr(start_at),
                str(per_process),
                "tok-" + prefix,
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    counts = []
    for worker in workers:
        out, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err[-2000:]
        counts.append(int(out.strip().splitlines()[-1]))
    assert sum(counts) == budget, counts  # of processes * per_process attempts
    assert processes * per_process > budget


@pytest.mark.skipif(not redis_up(), reason=f"no Redis at {REDIS_URL}")
def test_the_shared_throttle_says_how_long_to_wait() -> None:
    from api.throttling import TokenRateThrottle

    caches_conf = {
        **settings.CACHES,
        "shared": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"h11-{uuid.uuid4().hex[:8]}",
        },
    }
    rest = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"token": "2/minute"}}
    request = SimpleNamespace(auth=SimpleNamespace(key="wait-token"))
    with override_settings(CACHES=caches_conf, API_THROTTLE_CACHE="shared", REST_FRAMEWORK=rest):
        answers = []
        for _ in range(3):
            throttle = TokenRateThrottle()
            answers.append((throttle.allow_request(request, None), throttle.wait()))
    assert [a for a, _ in answers] == [True, True, False]
    assert 29 < answers[2][1] <= 30.0  # one request's share of the minute, on Redis's clock


def test_the_per_process_throttle_counts_exactly_across_threads() -> None:
    from api.throttling import TokenRateThrottle

    throttling.forget_local()
    rest = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"token": "30/hour"}}
    request = SimpleNamespace(auth=SimpleNamespace(key=f"threads-{uuid.uuid4().hex}"))
    admitted: list[int] = []
    barrier = threading.Barrier(6)

    def burst() -> None:
        barrier.wait(10)
        admitted.append(sum(TokenRateThrottle().allow_request(request, None) for _ in range(20)))

    with override_settings(REST_FRAMEWORK=rest, API_THROTTLE_CACHE=""):
        threads = [threading.Thread(target=burst) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
    throttling.forget_local()
    assert sum(admitted) == 30


def test_the_per_process_budgets_keep_the_most_recent_tokens(monkeypatch) -> None:
    """At most LOCAL_ENTRIES tokens are remembered; the least recently seen goes first, and a token
    seen again stays."""
    from api.throttling import TokenRateThrottle

    monkeypatch.setattr(throttling, "LOCAL_ENTRIES", 3)
    throttling.forget_local()
    rest = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"token": "1/hour"}}

    def admitted(name: str) -> bool:
        return TokenRateThrottle().allow_request(SimpleNamespace(auth=SimpleNamespace(key=name)), None)

    with override_settings(REST_FRAMEWORK=rest, API_THROTTLE_CACHE=""):
        assert [admitted(name) for name in ("a", "b", "c")] == [True, True, True]
        assert admitted("a") is False  # spent, and now the most recently seen
        assert admitted("d") is True  # "b" is dropped
        assert admitted("a") is False and admitted("c") is False
        assert admitted("b") is True  # forgotten: a whole budget again
    assert len(throttling._local) == 3
    throttling.forget_local()


def test_a_named_django_cache_still_holds_the_budget() -> None:
    """A non-Redis cache named by API_THROTTLE_CACHE is used through Django's cache API."""
    from django.core.cache import caches

    from api.throttling import TokenRateThrottle

    throttling.forget_local()
    conf = {**settings.CACHES, "budgets": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "b"}}
    rest = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"token": "2/hour"}}
    request = SimpleNamespace(auth=SimpleNamespace(key=f"named-{uuid.uuid4().hex}"))
    with override_settings(CACHES=conf, REST_FRAMEWORK=rest, API_THROTTLE_CACHE="budgets"):
        answers = [TokenRateThrottle().allow_request(request, None) for _ in range(3)]
        assert answers == [True, True, False]
        key = TokenRateThrottle().get_cache_key(request, None)
        assert caches["budgets"].get(key) > time.time()  # the token's arrival time, ahead of now
        caches["budgets"].clear()
    assert throttling._local == {}
