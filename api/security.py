"""Hardened defaults that are code rather than settings (docs/security.md)."""

from __future__ import annotations

import logging

MAX_MESSAGE = 300


class OneLineWarning(logging.Filter):
    """For ``django.security.DisallowedHost``: Django logs every request with a bad ``Host`` as an
    ERROR with a full traceback, so anyone can flood the log. This makes it one WARNING line, the
    message (which quotes the client's Host) cut to :data:`MAX_MESSAGE` characters.

    (A logging filter may change the record it passes: https://docs.python.org/3/library/logging.html#filter-objects)
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.levelno = logging.WARNING
        record.levelname = logging.getLevelName(logging.WARNING)
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        message = record.getMessage()
        record.msg = message[:MAX_MESSAGE] + ("..." if len(message) > MAX_MESSAGE else "")
        record.args = None
        return True
