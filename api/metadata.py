"""``OPTIONS`` answers (DRF metadata) that describe each write with the serializer it reads.

DRF's ``SimpleMetadata`` describes ``POST``/``PUT`` with ``view.get_serializer()``, which for these
views is the *output* serializer: every field read-only, nothing required. Here a view names its
input serializers instead:

- a viewset: ``input_serializers = {"create": ..., "update": ..., "batch": ...}`` (by action; the
  action of a method comes from the route's ``action_map``);
- an ``APIView``: ``input_serializer_class``.

A method the caller may not use (``check_permissions`` refuses it: no token, or no write scope)
is left out, as DRF does. Detail routes are described without reading the object: the answer is
the shape of the write, the same for every id.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from rest_framework import exceptions
from rest_framework.metadata import SimpleMetadata
from rest_framework.request import Request, clone_request

from core.errors import SwitchyardError


def input_serializer_class(view: Any, method: str) -> type | None:
    action_map = getattr(view, "action_map", None)
    if action_map is not None:
        action = action_map.get(method.lower())
        return (getattr(view, "input_serializers", None) or {}).get(action)
    return getattr(view, "input_serializer_class", None)


class InputMetadata(SimpleMetadata):
    def determine_metadata(self, request: Request, view: Any) -> dict[str, Any]:
        metadata = super().determine_metadata(request, view)
        # DRF asks for actions only of views with get_serializer (generic views); an APIView
        # that names its input serializer is described too.
        if "actions" not in metadata and getattr(view, "input_serializer_class", None) is not None:
            actions = self.determine_actions(request, view)
            if actions:
                metadata["actions"] = actions
        return metadata

    def determine_actions(self, request: Request, view: Any) -> dict[str, Any]:
        actions: dict[str, Any] = {}
        for method in ("POST", "PUT"):
            if method not in view.allowed_methods:
                continue
            serializer_class = input_serializer_class(view, method)
            if serializer_class is None:
                continue
            view.request = clone_request(request, method)
            try:
                view.check_permissions(view.request)
            except (exceptions.APIException, Http404, SwitchyardError):
                continue
            finally:
                view.request = request
            actions[method] = self.get_serializer_info(serializer_class())
        return actions
