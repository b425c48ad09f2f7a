"""Permissions: every ``/api/v1/`` endpoint needs a token; some writes need staff."""

from typing import Any

from rest_framework import permissions
from rest_framework.request import Request


class IsStaffForWrites(permissions.BasePermission):
    """Reads for any authenticated caller; writes (POST, PUT, PATCH, DELETE) for staff only (403)."""

    message = "Only staff accounts may change this resource."

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff)
