"""drf-spectacular post-processing hooks."""

from __future__ import annotations

from typing import Any

API_PREFIX = "/api/v1/"

REQUEST_ID = {
    "description": "The request's id: echoed from the request when it sent a valid one, else generated.",
    "schema": {"type": "string", "maxLength": 128},
    "required": True,
}
SERVER_TIMING = {
    "description": "Time spent on each database alias touched, named by the alias, in ms "
    "(`users_db;dur=1.8, default_replica_1;dur=0.9`).",
    "schema": {"type": "string"},
}
WWW_AUTHENTICATE = {"description": "`Token`: how to authenticate.", "schema": {"type": "string"}, "required": True}
RETRY_AFTER = {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}, "required": True}
LOCATION = {
    "description": "The path of the created resource (of the events collection for a batch).",
    "schema": {"type": "string"},
    "required": True,
}
PIN = {
    "description": "Present when this write pinned the caller's reads to the primaries it wrote to "
    "(`users_db,default|<expiry unix time>`). A client that cannot keep cookies (a cross-origin "
    "frontend) sends it back unchanged as the request header of the same name to read its own writes.",
    "schema": {"type": "string"},
}
RATE_LIMIT_POLICY = {
    "description": "The budget that counted this request (draft-ietf-httpapi-ratelimit-headers-10, a "
    'structured field): `"token";q=1200;w=60` (requests per window of seconds, per token) or, on a failed '
    'authentication, `"auth-failure";q=60;w=60` (per client address). Present when a throttle counted the request.',
    "schema": {"type": "string"},
}
RATE_LIMIT = {
    "description": 'What is left of that budget: `"token";r=1187;t=3`: `r` requests may still be sent at once, '
    "`t` seconds until the budget is whole again (`r=0` on a 429). Present when a throttle counted the request.",
    "schema": {"type": "string"},
}
WRITE_METHODS = {"post", "put", "patch", "delete"}
ALLOW = {"description": "The methods this resource allows right now.", "schema": {"type": "string"}}


def pin_header() -> str:
    from django.conf import settings

    return settings.REPLICA_PIN_HEADER


def add_common_headers(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Document the headers every ``/api/v1/`` response carries, those of 401, 405 and 429, ``Location``
    on every 201, the replica pin on a write's 2xx and, on throttled operations (those that may
    answer 429), ``RateLimit-Policy`` and ``RateLimit`` (required on the 429)."""
    for path, operations in result.get("paths", {}).items():
        if not path.startswith(API_PREFIX):
            continue
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            throttled = "429" in operation["responses"]
            for status, response in operation["responses"].items():
                headers = response.setdefault("headers", {})
                if throttled:
                    required = {"required": True} if status == "429" else {}
                    headers.setdefault("RateLimit-Policy", {**RATE_LIMIT_POLICY, **required})
                    headers.setdefault("RateLimit", {**RATE_LIMIT, **required})
                headers.setdefault("X-Request-ID", REQUEST_ID)
                headers.setdefault("Server-Timing", SERVER_TIMING)
                if status == "201":
                    headers.setdefault("Location", LOCATION)
                if method in WRITE_METHODS and status.startswith("2"):
                    headers.setdefault(pin_header(), PIN)
                if status == "401":
                    headers.setdefault("WWW-Authenticate", WWW_AUTHENTICATE)
                elif status == "429":
                    headers.setdefault("Retry-After", RETRY_AFTER)
                elif status == "405":
                    headers.setdefault("Allow", ALLOW)
    return result


def describe_token_scopes(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """The ``tokenAuth`` scheme lists the scopes (an apiKey scheme has no scopes of its own in
    OpenAPI 3.0: they are in its description and ``x-scopes``; each operation names its own in
    ``x-required-scopes`` and its description)."""
    from api.permissions import SCOPE_RULE
    from core.tokens import scopes

    scheme = result.get("components", {}).get("securitySchemes", {}).get("tokenAuth")
    if scheme is not None:
        rows = "\n".join(f"- `{name}`: {scopes.DESCRIPTIONS[name]}" for name in scopes.ALL)
        scheme["description"] = (
            "`Authorization: Token <key>` (`manage.py create_api_token`). Each operation needs the scopes "
            "named in its description (`x-required-scopes`); a token without one is answered 403 with "
            "`required_scope`. " + SCOPE_RULE + " A read a write scope allows is in "
            "`x-read-implied-by`. A token may be bound to one user: it then writes only that user's objects. "
            "Scopes:\n" + rows
        )
        scheme["x-scopes"] = dict(scopes.DESCRIPTIONS)
    return result


def _renamed(name: str) -> str:
    """``PostInputRequest`` -> ``PostInput``: the input serializers are request-only already, so the
    suffix drf-spectacular adds for split request components only makes generated names longer."""
    if name.endswith("InputRequest"):
        return name.removesuffix("Request")
    return name


def _enum_varname(value: str) -> str:
    """``-created_at`` -> ``created_at_desc``; anything not a letter, digit or ``_`` becomes ``_``."""
    descending = value.startswith("-")
    core = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in value.lstrip("-")).strip("_") or "empty"
    if core[0].isdigit():
        core = "v" + core
    return core + ("_desc" if descending else "")


def _walk(node: Any, visit: Any) -> None:
    if isinstance(node, dict):
        visit(node)
        for value in node.values():
            _walk(value, visit)
    elif isinstance(node, list):
        for value in node:
            _walk(value, visit)


def client_friendly_names(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Names that read well in generated clients (openapi-python-client, openapi-typescript):
    request components without the ``Request`` suffix, and ``x-enum-varnames`` on string enums
    whose values are not identifiers (``-id`` -> ``id_desc`` instead of ``VALUE_1``)."""
    schemas = result.get("components", {}).get("schemas", {})
    renames = {old: _renamed(old) for old in schemas if _renamed(old) != old}
    clash = [new for new in renames.values() if new in schemas]
    if clash:
        raise ValueError(f"renamed components would clash with existing ones: {clash}")
    if renames:
        result["components"]["schemas"] = {renames.get(name, name): body for name, body in schemas.items()}
        prefix = "#/components/schemas/"

        def fix_ref(node: dict) -> None:
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(prefix) and ref[len(prefix) :] in renames:
                node["$ref"] = prefix + renames[ref[len(prefix) :]]

        _walk(result, fix_ref)

    def name_enum(node: dict) -> None:
        values = node.get("enum")
        if (
            isinstance(values, list)
            and values
            and all(isinstance(v, str) for v in values)
            and not all(v.isidentifier() for v in values)
            and "x-enum-varnames" not in node
        ):
            names = [_enum_varname(v) for v in values]
            if len(set(names)) == len(names):
                node["x-enum-varnames"] = names

    _walk(result, name_enum)
    return result


def describe_properties(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Every property of every component gets a description: the serializer's ``help_text`` when it
    has one, else the glossary of :mod:`openapi.descriptions` (by ``Component.property``, then by
    property name). A property neither names fails the schema generation (and so the suite)."""
    from openapi.descriptions import BY_COMPONENT, BY_NAME

    missing = []
    for component, schema in result.get("components", {}).get("schemas", {}).items():
        for name, prop in (schema.get("properties") or {}).items():
            if prop.get("description"):
                continue
            text = BY_COMPONENT.get(f"{component}.{name}") or BY_NAME.get(name)
            if text is None:
                missing.append(f"{component}.{name}")
            elif "$ref" in prop:  # OpenAPI 3.0: siblings of $ref are ignored; wrap it
                prop["allOf"] = [{"$ref": prop.pop("$ref")}]
                prop["description"] = text
            else:
                prop["description"] = text
    if missing:
        raise ValueError("schema properties without a description (openapi/descriptions.py): " + ", ".join(missing))
    return result


def closed_request_bodies(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """``additionalProperties: false`` on every component a request body uses, directly or through
    another (a batch's events, a registration's profile): the API refuses unknown fields
    (api.serializers.input). Free-form values inside them (an event's ``data``) keep their own
    open schema."""
    prefix = "#/components/schemas/"
    schemas = result.get("components", {}).get("schemas", {})
    closed: set[str] = set()
    pending: list[Any] = []
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict):
                pending.extend(
                    media.get("schema") for media in operation.get("requestBody", {}).get("content", {}).values()
                )

    def note(node: dict) -> None:
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(prefix) and ref[len(prefix) :] not in closed:
            pending.append(ref)

    while pending:
        item = pending.pop()
        if isinstance(item, str):  # a component's reference: close it, then what it refers to
            name = item[len(prefix) :]
            if name in closed or name not in schemas:
                continue
            closed.add(name)
            component = schemas[name]
            if component.get("type") == "object" and "properties" in component:
                component["additionalProperties"] = False
            _walk(component, note)
        elif isinstance(item, dict):
            _walk(item, note)
    return result


def _json_media(content_type: str) -> bool:
    return content_type == "application/json" or (content_type.endswith("+json") and "problem" not in content_type)


def add_examples(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Request examples, recorded 2xx answers, one Problem example per error status and real list
    URLs (see openapi/examples.py)."""
    from openapi import examples

    recorded = examples.recorded_responses()
    for path, operations in result.get("paths", {}).items():
        for operation in operations.values():
            if not isinstance(operation, dict) or "operationId" not in operation:
                continue
            op_id = operation["operationId"]
            path_names = [p["name"] for p in operation.get("parameters", []) if p.get("in") == "path"]
            values = examples.path_values(op_id, path_names)
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "path":
                    parameter["example"] = values[parameter["name"]]
            body = examples.REQUESTS.get(op_id)
            content = operation.get("requestBody", {}).get("content", {})
            if body is not None:
                for media in content.values():
                    media["examples"] = {"seed_demo": {"summary": "works on a fresh seed_demo", "value": body}}
            for status, response in operation.get("responses", {}).items():
                for content_type, media in (response.get("content") or {}).items():
                    if content_type.startswith("application/problem+json"):
                        operation.setdefault("x-path", path)
                        media["examples"] = {status: {"value": examples.problem_example(int(status), op_id, operation)}}
                        operation.pop("x-path")
                    elif status.startswith("2") and _json_media(content_type):
                        answer = recorded.get(op_id, {}).get(status)
                        if answer is not None:
                            media["examples"] = {"recorded": {"summary": "a real answer", "value": answer}}
    # Paginated lists: the placeholder URLs of drf-spectacular become this API's own.
    for name, schema in result.get("components", {}).get("schemas", {}).items():
        props = schema.get("properties", {})
        for field in ("next", "previous"):
            if field in props and "example" in props[field]:
                list_path = _list_path_of(result, name)
                if list_path is None:
                    props[field].pop("example")
                    continue
                url = examples.EXAMPLE_ORIGIN + list_path
                if "cursor=" in str(props[field]["example"]):
                    props[field]["example"] = url + (
                        "?cursor=cD0yMDI2LTExLTI1KzEwJTNBMDAlM0EwMFo%3D"
                        if field == "next"
                        else "?cursor=cj0xJnA9MjAyNi0xMS0yNQ%3D%3D"
                    )
                else:
                    props[field]["example"] = url + ("?page=3" if field == "next" else "?page=1")
    return result


def _list_path_of(result: dict[str, Any], component: str) -> str | None:
    ref = "#/components/schemas/" + component
    for path, operations in result.get("paths", {}).items():
        get = operations.get("get") if isinstance(operations, dict) else None
        if not get:
            continue
        for response in get.get("responses", {}).values():
            for media in (response.get("content") or {}).values():
                if media.get("schema", {}).get("$ref") == ref:
                    return path
    return None
