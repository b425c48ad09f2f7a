"""Usernames are unique by their look-alike key (``core.users.skeleton``): a username that reads the
same as an existing one (Cyrillic е, Greek ο, fullwidth letters, ``rn`` for ``m``, ``0`` for ``o``,
ligatures) is refused on every path that creates or renames a user, with the duplicate-username
400 (code ``unique``), and users_db's unique index on ``username_skeleton`` holds under a race."""

from __future__ import annotations

import threading
import unicodedata
from importlib import import_module

import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connections, transaction

from core import aliases
from core.services import registration
from core.users import services as users_services
from core.users import skeleton
from core.users.models import User
from tests.api.conftest import assert_problem
from tests.factories import api_client

USERS_URL = "/api/v1/users/"
REG_URL = "/api/v1/registrations/"
DBS = [aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS, aliases.CACHE]
pytestmark = pytest.mark.django_db(databases=DBS)

#: (existing username, a look-alike of it)
LOOK_ALIKES = [
    ("demo_000003", "d\u0435mo_000003"),  # Cyrillic small ie
    ("neo", "ne\u03bf"),  # Greek small omicron
    ("neo", "\uff4e\uff45\uff4f"),  # fullwidth letters (NFKC alone folds these)
    ("modern", "rnodern"),  # confusables.txt maps m to rn
    ("neo", "ne0"),  # digit zero for o (its prototype is O, folded)
    ("fish", "\ufb01sh"),  # the fi ligature (NFKC)
    ("paypal", "p\u0430yp\u0430l"),  # Cyrillic small a
    ("Ada", "\u0410DA"),  # Cyrillic capital A, another case
    ("will", "wi1l"),  # digit one for l
]


def test_the_key_follows_uts39_skeleton_with_case_folded() -> None:
    assert skeleton.data_version() == "13.0.0"
    assert skeleton.prototypes()["\u0435"] == "e" and skeleton.prototypes()["m"] == "rn"
    assert skeleton.skeleton("d\u0435mo") == "derno"
    assert skeleton.skeleton("0") == "O"  # UTS #39 keeps the prototype's case; the key folds it
    for existing, look_alike in LOOK_ALIKES:
        assert skeleton.username_key(existing) == skeleton.username_key(look_alike), (existing, look_alike)
        assert skeleton.username_skeleton(existing) == skeleton.username_skeleton(look_alike)
    # Names a reader tells apart keep distinct keys.
    for a, b in [("demo_000003", "demo_000008"), ("neo", "nea"), ("ada", "adam"), ("bob", "b0bby")]:
        assert skeleton.username_key(a) != skeleton.username_key(b), (a, b)
    assert len(skeleton.username_skeleton("\uaf66" * 150)) == 64  # a key 7 times its length: stored as a digest


@pytest.mark.parametrize(("existing", "look_alike"), LOOK_ALIKES)
def test_a_look_alike_is_refused_on_both_endpoints_and_on_rename(existing: str, look_alike: str) -> None:
    staff = api_client(staff=True)
    first = staff.post(USERS_URL, {"username": existing, "email": "first@example.com"}, format="json")
    assert first.status_code == 201, first.content
    other = staff.post(USERS_URL, {"username": "someone_else", "email": "other@example.com"}, format="json").json()
    body = {"username": look_alike, "email": "second@example.com"}
    answers = [
        staff.post(USERS_URL, body, format="json"),
        staff.post(REG_URL, body, format="json"),
        staff.patch(f"{USERS_URL}{other['id']}/", {"username": look_alike}, format="json"),
    ]
    for answer in answers:
        problem = assert_problem(answer, 400, "username")
        assert problem["errors"] == [
            {"field": "username", "code": "unique", "message": users_services.UNIQUE_MESSAGES["username"]}
        ]
    assert sorted(User.objects.values_list("username", flat=True)) == sorted(
        [unicodedata.normalize("NFKC", existing), "someone_else"]
    )


def test_renaming_a_user_to_a_look_alike_of_their_own_name_is_allowed() -> None:
    user = users_services.user_create(username="neo", email="neo@example.com")
    renamed = users_services.user_update(user=user, data={"username": "NEO"})
    assert renamed.username == "NEO"
    assert User.objects.get().username_skeleton == skeleton.username_skeleton("neo")


def test_every_write_path_stores_the_key() -> None:
    created = users_services.user_create(username="Ada", email="ada@example.com")
    registered = registration.user_register(username="Bob", email="bob@example.com")
    (bulk,) = User.objects.bulk_create([User(username="Cy", email="cy@example.com")])
    for user, name in ((created, "Ada"), (registered.user, "Bob"), (bulk, "Cy")):
        assert User.objects.get(pk=user.pk).username_skeleton == skeleton.username_skeleton(name)
    users_services.user_update(user=User.objects.get(pk=created.pk), data={"username": "Dee"})
    assert User.objects.get(pk=created.pk).username_skeleton == skeleton.username_skeleton("dee")


def test_users_db_refuses_a_look_alike_that_skips_the_check() -> None:
    User.objects.create(username="demo_000003", email="a@example.com")
    with pytest.raises(IntegrityError), transaction.atomic(using=aliases.USERS):
        User.objects.create(username="d\u0435mo_000003", email="b@example.com")
    with pytest.raises(IntegrityError), transaction.atomic(using=aliases.USERS):
        User.objects.bulk_create([User(username="DEMO_000003", email="c@example.com")])
    assert User.objects.count() == 1


@pytest.mark.django_db(databases=DBS, transaction=True)
def test_two_concurrent_registrations_of_look_alikes_one_wins(monkeypatch) -> None:
    """Both registrations pass the check before either inserts (a barrier after it, where the
    database lets two writers in at once): users_db's unique index decides, and the loser gets the
    same 400 as the check gives."""
    barrier = threading.Barrier(2)
    both_checked = []
    check = users_services.check_unique

    def check_then_wait(**kwargs):  # type: ignore[no-untyped-def]
        check(**kwargs)
        try:
            barrier.wait(3)
            both_checked.append(True)
        except threading.BrokenBarrierError:  # SQLite: one writer at a time, the other waits to begin
            pass

    monkeypatch.setattr(users_services, "check_unique", check_then_wait)
    answers: list = []

    def register(username: str, email: str) -> None:
        try:
            answers.append(api_client().post(REG_URL, {"username": username, "email": email}, format="json"))
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=register, args=("demo_race", "one@example.com")),
        threading.Thread(target=register, args=("d\u0435mo_r\u0430ce", "two@example.com")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(a.status_code for a in answers) == [201, 400]
    loser = next(a for a in answers if a.status_code == 400)
    problem = assert_problem(loser, 400, "username")
    assert problem["errors"][0]["code"] == "unique"
    assert (problem["step"], problem["alias"]) == (registration.STEP_USER, aliases.USERS)
    if connections[aliases.USERS].vendor == "postgresql":
        assert len(both_checked) == 2  # the race did happen: the index, not the check, refused one
    assert User.objects.count() == 1


def test_the_migration_keeps_older_look_alikes_under_a_placeholder(capsys) -> None:
    migration = import_module("core.users.migrations.0005_username_skeleton")
    first = User.objects.create(username="paypal", email="a@example.com")
    later = User.objects.create(username="other", email="b@example.com")
    # A look-alike written before the rule existed: its key is not the real one yet.
    User.objects.filter(pk=later.pk).update(username="p\u0430ypal", username_skeleton="before")
    User.objects.filter(pk=first.pk).update(username_skeleton="")

    class Editor:
        connection = connections[aliases.USERS]

    migration.fill_skeletons(apps, Editor())
    assert User.objects.get(pk=first.pk).username_skeleton == skeleton.username_skeleton("paypal")
    assert User.objects.get(pk=later.pk).username_skeleton == f"kept:{later.pk}"
    assert f"user {later.pk}" in capsys.readouterr().out
    # The kept user still works: a change that is not a rename leaves the placeholder alone.
    kept = User.objects.get(pk=later.pk)
    users_services.user_update(user=kept, data={"first_name": "Kept"})
    assert User.objects.get(pk=later.pk).username_skeleton == f"kept:{later.pk}"


def test_seed_demo_refuses_to_seed_over_a_look_alike_before_removing_anything() -> None:
    User.objects.create(username="d\u0435mo_000002", email="spoof@example.com")
    with pytest.raises(CommandError, match="look like demo users"):
        call_command("seed_demo", users=3, posts_per_user=0, events=0, customers=0, cache_entries=0)
    assert list(User.objects.values_list("username", flat=True)) == ["d\u0435mo_000002"]
