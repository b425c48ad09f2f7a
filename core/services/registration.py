"""Registration: the user (users_db), their profile (default) and a ``user_registered`` event
(analytics_db), written as one saga (:mod:`core.services.saga`).

Either all three exist afterwards or none does: a failed step undoes the ones before it, and a run
interrupted by a dying process is undone by ``manage.py recover_sagas``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

from core import aliases
from core.analytics import services as analytics_services
from core.analytics.models import AnalyticsEvent
from core.blog.models import UserProfile
from core.services import saga
from core.users import services as users_services
from core.users.fence import users_fenced
from core.users.models import User

SAGA_NAME = "user_register"
EVENT_TYPE = "user_registered"
STEP_USER = "create_user"
STEP_PROFILE = "create_profile"
STEP_EVENT = "record_event"

USER_FIELDS = ("username", "email", "first_name", "last_name")
PROFILE_FIELDS = ("bio", "avatar_url")


@dataclass(frozen=True)
class Registration:
    user: User
    profile: UserProfile
    saga_id: int


# --- steps -------------------------------------------------------------------------------------
def _create_user(ctx: saga.StepContext) -> dict[str, Any]:
    user_fields = ctx.context["user"]
    # The users service's uniqueness rule (case-insensitive username and email), read on users_db
    # inside this step's transaction and time limit: a taken one is SagaStepInvalid (code unique).
    users_services.check_unique(username=user_fields["username"], email=user_fields["email"])
    user = User.objects.create(**{name: ctx.context["user"][name] for name in USER_FIELDS})
    ctx.objects["user"] = user
    return {"user_id": user.pk, "username": user.username}


def _delete_user(payload: dict[str, Any], context: dict[str, Any]) -> None:
    # By id *and* username: an id alone could name someone else's row after a rollback.
    User.objects.filter(pk=payload["user_id"], username=payload["username"]).delete()


def _fence(ctx: saga.StepContext) -> Any:
    return users_fenced([ctx.results[STEP_USER]["user_id"]], field="user_id")


def _event_fence(ctx: saga.StepContext) -> Any:
    return analytics_services.events_user_fence([ctx.results[STEP_USER]["user_id"]], field="user_id")


def _create_profile(ctx: saga.StepContext) -> dict[str, Any]:
    user_id = ctx.results[STEP_USER]["user_id"]
    profile = UserProfile.objects.create(user_id=user_id, **ctx.context["profile"])
    ctx.objects["profile"] = profile
    return {"profile_id": profile.pk, "user_id": user_id}


def _delete_profile(payload: dict[str, Any], context: dict[str, Any]) -> None:
    UserProfile.objects.filter(pk=payload["profile_id"], user_id=payload["user_id"]).delete()


def _record_event(ctx: saga.StepContext) -> dict[str, Any]:
    user_id = ctx.results[STEP_USER]["user_id"]
    # No personal data in the event: it outlives the user when their events are anonymised.
    event = AnalyticsEvent.objects.create(event_type=EVENT_TYPE, user_id=user_id, data={"saga_id": ctx.saga_id})
    return {"event_id": event.pk, "user_id": user_id}


def _delete_event(payload: dict[str, Any], context: dict[str, Any]) -> None:
    AnalyticsEvent.objects.filter(pk=payload["event_id"], user_id=payload["user_id"], event_type=EVENT_TYPE).delete()


def _build(context: dict[str, Any]) -> list[saga.Step]:
    return [
        saga.Step(STEP_USER, aliases.USERS, _create_user, _delete_user),
        # Both held by the users fence until they commit: a deletion of the new user that began
        # meanwhile refuses them, so neither outlives the user (docs/sagas.md, "No orphans").
        saga.Step(STEP_PROFILE, aliases.DEFAULT, _create_profile, _delete_profile, fence=_fence),
        saga.Step(STEP_EVENT, aliases.ANALYTICS, _record_event, _delete_event, fence=_event_fence),
    ]


DEFINITION = saga.register(saga.SagaDefinition(SAGA_NAME, _build, on_recovery=saga.COMPENSATE))


# --- service -----------------------------------------------------------------------------------
def _validate(user_fields: dict[str, Any], profile_fields: dict[str, Any]) -> None:
    """Field checks that need no query (uniqueness is the databases' job, inside the saga)."""
    errors: dict[str, list[ValidationError]] = {}
    try:
        User(**user_fields).full_clean(validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        errors.update(exc.error_dict)
    try:
        UserProfile(user_id=0, **profile_fields).full_clean(
            exclude=["user_id"], validate_unique=False, validate_constraints=False
        )
    except ValidationError as exc:
        errors.update({f"profile.{name}": value for name, value in exc.error_dict.items()})
    if errors:
        raise ValidationError(errors)


def user_register(
    *,
    username: str,
    email: str,
    first_name: str = "",
    last_name: str = "",
    bio: str = "",
    avatar_url: str = "",
) -> Registration:
    """Create the user, their profile and the ``user_registered`` event, all or nothing.

    Raises ``ValidationError`` or ``FieldErrors`` for bad fields (before anything is written), and
    on a failed step (a taken username or email is ``SagaStepInvalid`` with code ``unique`` at
    ``create_user``)
    :class:`~core.services.saga.SagaStepConflict` (e.g. username taken: 409),
    :class:`~core.services.saga.SagaStepUnavailable` (a database down or locked: 503) or
    :class:`~core.services.saga.SagaStepInvalid` (400), each naming the step; nothing is left behind.
    """
    user_fields = {"username": username, "email": email.strip(), "first_name": first_name, "last_name": last_name}
    profile_fields = {"bio": bio, "avatar_url": avatar_url}
    _validate(user_fields, profile_fields)
    # The users service's one definition of a valid, unique user (case-insensitive username and
    # email, NFKC usernames); a race past it is refused by users_db's unique indexes.
    # (The username's form is checked here; uniqueness inside the create_user step, under its time limit.)
    user_fields["username"] = users_services.check_username(username)
    result = saga.run(DEFINITION, {"user": user_fields, "profile": profile_fields})
    return Registration(user=result.objects["user"], profile=result.objects["profile"], saga_id=result.saga_id)
