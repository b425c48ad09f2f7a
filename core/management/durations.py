"""Parse the durations management commands take on the command line: ``90s``, ``15m``, ``1h``, ``7d``."""

from __future__ import annotations

import argparse
import datetime as dt
import re

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)


def parse_duration(text: str) -> dt.timedelta:
    """``"1h"`` -> one hour; a bare number is seconds. Raises ``argparse.ArgumentTypeError``."""
    match = _PATTERN.match(text or "")
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use e.g. 90s, 15m, 1h, 7d)")
    amount, unit = float(match.group(1)), (match.group(2) or "s").lower()
    return dt.timedelta(**{_UNITS[unit]: amount})
