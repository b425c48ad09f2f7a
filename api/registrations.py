"""``POST /api/v1/registrations/``: the user, the profile and the ``user_registered`` event as one unit.

Thin view: input serializer -> :func:`core.services.registration.user_register` (a saga) ->
output serializer. A failed saga step is answered here with Problem Details naming the step and
its database (``step``, ``alias`` members), since that is what a client needs to decide whether
to retry: 400 (invalid fields; a taken username or email, checked by the users service exactly as
``POST /users/`` checks it), 409 (another conflict), or 503 (a database down or locked; retry).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.urls import NoReverseMatch, reverse
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from api import permissions as who
from api.exceptions import field_errors_detail
from api.idempotency import IDEMPOTENCY_PARAMETER, IDEMPOTENCY_RESPONSES, idempotent, problem_response
from api.problems import PROBLEM_CONTENT_TYPE, ProblemSerializer
from api.query_params import QueryCheckedAPIView
from api.serializers.fields import Limit, StrictCharField, StrictEmailField, StrictURLField
from api.serializers.input import InputSerializer
from api.serializers.users import EMAIL_CHARS, NAME_CHARS, USERNAME_CHARS, UserOutputSerializer
from core import aliases
from core.errors import FieldErrors, SourceUnavailable
from core.services import saga
from core.services.registration import STEP_USER, user_register
from core.users import services as users_services


# --- serializers -------------------------------------------------------------------------------
class RegistrationProfileInputSerializer(InputSerializer):
    bio = StrictCharField(required=False, allow_blank=True, default="", max_length=Limit("PROFILE_BIO_MAX_CHARS"))
    avatar_url = StrictURLField(
        required=False, allow_blank=True, default="", max_length=Limit("PROFILE_AVATAR_URL_MAX_CHARS")
    )


class RegistrationInputSerializer(InputSerializer):
    username = StrictCharField(max_length=USERNAME_CHARS)
    email = StrictEmailField(max_length=EMAIL_CHARS)
    first_name = StrictCharField(max_length=NAME_CHARS, required=False, allow_blank=True, default="")
    last_name = StrictCharField(max_length=NAME_CHARS, required=False, allow_blank=True, default="")
    profile = RegistrationProfileInputSerializer(required=False)


class RegistrationUserSerializer(UserOutputSerializer):
    """The registered user: personal fields null unless the caller may read them (as everywhere)."""


# The profile written on default: the fields of core.blog's UserProfile, declared here so that this
# view imports no app's models (the saga in core.services.registration writes them). A docstring
# here would become the schema component's description.
class RegistrationProfileSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    user_id = serializers.IntegerField(min_value=-(2**63), max_value=2**63 - 1)
    bio = serializers.CharField(required=False, allow_blank=True)
    avatar_url = serializers.URLField(max_length=500, required=False, allow_blank=True)
    created_at = serializers.DateTimeField(read_only=True)


class RegistrationOutputSerializer(serializers.Serializer):
    user = RegistrationUserSerializer()
    profile = RegistrationProfileSerializer()


# --- errors ------------------------------------------------------------------------------------
def _field_errors(errors: dict[str, list[tuple[str, str]]]) -> list[dict[str, Any]]:
    return [
        {"field": None if name in ("__all__", "non_field_errors") else name, "code": code, "message": message}
        for name, items in errors.items()
        for code, message in items
    ]


def saga_problem(exc: Exception) -> Response | None:
    """The answer to a failed registration, or None when ``exc`` is not one this view answers."""
    if isinstance(exc, FieldErrors) and not isinstance(exc, saga.SagaStepFailed):
        # The users service's checks, run before the saga: answered as POST /users/ answers them,
        # but a taken email, which only callers with pii:read can be told (docs/security.md), is a 409.
        errors = _field_errors(exc.errors)
        if any(e["field"] == "email" and e["code"] == "unique" for e in errors):
            return problem_response(
                409,
                "conflict",
                "Conflict",
                field_errors_detail(errors),
                errors=errors,
                step=STEP_USER,
                alias=aliases.USERS,
            )
        return problem_response(
            400,
            "invalid-request",
            "The request is invalid",
            field_errors_detail(errors),
            errors=errors,
            step=STEP_USER,
            alias=aliases.USERS,
        )
    if isinstance(exc, saga.SagaStepConflict) and exc.field == "email":
        # A race past the check on the email: the same 409 as the check.
        message = users_services.UNIQUE_MESSAGES["email"]
        return problem_response(
            409,
            "conflict",
            "Conflict",
            message,
            errors=[{"field": "email", "code": "unique", "message": message}],
            step=exc.step,
            alias=exc.alias,
        )
    if isinstance(exc, saga.SagaStepConflict) and exc.field in users_services.UNIQUE_MESSAGES:
        # A race past the check, refused by users_db's unique index: the same answer as the check.
        message = users_services.UNIQUE_MESSAGES[exc.field]
        return problem_response(
            400,
            "invalid-request",
            "The request is invalid",
            message,
            errors=[{"field": exc.field, "code": "unique", "message": message}],
            step=exc.step,
            alias=exc.alias,
        )
    if isinstance(exc, saga.SagaStepConflict):
        field = exc.field or None
        return problem_response(
            409,
            "conflict",
            "Conflict",
            str(exc),
            errors=[{"field": field, "code": "unique" if field else "conflict", "message": str(exc)}],
            step=exc.step,
            alias=exc.alias,
        )
    if isinstance(exc, saga.SagaStepInvalid):
        errors = _field_errors(exc.errors)
        if any(e["field"] == "email" and e["code"] == "unique" for e in errors):
            return problem_response(
                409, "conflict", "Conflict", field_errors_detail(errors), errors=errors, step=exc.step, alias=exc.alias
            )
        unique = bool(errors) and all(e["code"] == "unique" for e in errors)
        detail = field_errors_detail(errors) if unique else f"step {exc.step} on {exc.alias} refused the data"
        return problem_response(
            400, "invalid-request", "The request is invalid", detail, errors=errors, step=exc.step, alias=exc.alias
        )
    if isinstance(exc, SourceUnavailable):
        extensions = {"step": exc.step} if isinstance(exc, saga.SagaStepFailed) else {}
        return problem_response(
            503,
            "source-unavailable",
            "A database is unavailable",
            str(exc),
            alias=exc.alias,
            headers={"Retry-After": "5"},
            **extensions,
        )
    if isinstance(exc, ValidationError):
        errors = (
            {
                name: [(e.code or "invalid", m) for e in items for m in e.messages]
                for name, items in exc.error_dict.items()
            }
            if hasattr(exc, "error_dict")
            else {"__all__": [("invalid", m) for m in exc.messages]}
        )
        return problem_response(
            400,
            "invalid-request",
            "The request is invalid",
            "the registration is invalid",
            errors=_field_errors(errors),
        )
    return None


# --- view --------------------------------------------------------------------------------------


class RegistrationView(QueryCheckedAPIView):
    """Register a user: users_db, default and analytics_db written as one saga."""

    # api.permissions. pii:read too: whether a registration succeeds tells whether its email was
    # taken (the user appears or not), so only callers trusted with emails may register (409 then).
    write_scope = ("registrations:write", "pii:read")
    #: what OPTIONS describes the POST with (api.metadata)
    input_serializer_class = RegistrationInputSerializer

    @extend_schema(
        operation_id="registrations_create",
        summary="Register a user (user, profile and event, all or nothing)",
        description=(
            "Creates the user on users_db, the profile on default and a `user_registered` analytics event "
            "as a saga: when a step fails the steps before it are undone, so nothing of the registration is "
            "left on any database. The error names the failed `step` and its `alias`. Honours `Idempotency-Key`."
        ),
        request=RegistrationInputSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={
            201: RegistrationOutputSerializer,
            (400, PROBLEM_CONTENT_TYPE): OpenApiResponse(
                ProblemSerializer,
                description="Invalid fields, or the username "
                "is taken (case-insensitively; `errors[].code` `unique`, as on POST /users/), or a step refused the data.",
            ),
            (409, PROBLEM_CONTENT_TYPE): OpenApiResponse(
                ProblemSerializer,
                description="The email is taken (`errors[]` names "
                "`email`, code `unique`; only callers with `pii:read` may register, so only they learn it), "
                "a profile already exists for the id, or the Idempotency-Key's first request is still running.",
            ),
            **{k: v for k, v in IDEMPOTENCY_RESPONSES.items() if k[0] == 422},
            (503, PROBLEM_CONTENT_TYPE): OpenApiResponse(
                ProblemSerializer,
                description="A database was unreachable or locked past the step's "
                "time limit; nothing was kept. Retry later (Retry-After).",
            ),
        },
        examples=[
            OpenApiExample(
                "registration",
                request_only=True,
                value={
                    "username": "ada",
                    "email": "ada@example.com",
                    "first_name": "Ada",
                    "profile": {"bio": "Mathematician", "avatar_url": "https://example.com/ada.png"},
                },
            )
        ],
        tags=["registrations"],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        who.require_unbound(request, "register users")
        serializer = RegistrationInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        profile = dict(data.pop("profile", None) or {})
        try:
            registration = user_register(**data, bio=profile.get("bio", ""), avatar_url=profile.get("avatar_url", ""))
        except (saga.SagaStepFailed, SourceUnavailable, ValidationError, FieldErrors) as exc:
            answer = saga_problem(exc)
            if answer is None:
                raise
            return answer
        body = RegistrationOutputSerializer(
            {"user": registration.user, "profile": registration.profile}, context={"request": request}
        ).data
        headers = {}
        try:
            headers["Location"] = reverse("user-detail", kwargs={"pk": registration.user.pk})
        except NoReverseMatch:  # the users resource is wired by the resources area
            pass
        return Response(body, status=status.HTTP_201_CREATED, headers=headers)
