"""The look-alike key of a username: Unicode's confusable skeleton (UTS #39), without case.

Two usernames that a reader cannot tell apart (``demo_1`` with a Latin ``e`` and ``dеmo_1`` with a
Cyrillic one; ``paypal`` and ``pаypal``; ``neo`` and ``ne0``) have the same key, and users_db
keeps one user per key (a unique index on ``users_user.username_key``).

The key of a username is ``casefold(skeleton(casefold(NFKC(username))))``, where ``skeleton`` is
UTS #39's (section 4, "Confusable Detection"): the string in NFD, every character replaced by its
prototype from ``confusables.txt``, and NFD again. Folding case first makes the key as
case-insensitive as usernames always were (``Ada`` and ``ada`` are one user); folding it again
after the skeleton puts the prototypes that are capitals (``0`` -> ``O``) in the same case as the
letters they stand for.

The data is ``confusables.txt`` as the ``confusables`` distribution ships it (read through
``importlib.metadata``, so that package's own code, which loads a large JSON table at import, never
runs); :func:`data_version` names its Unicode version.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import re
import unicodedata

#: The distribution that ships Unicode's confusables.txt, and that file's name in it.
DISTRIBUTION = "confusables"
DATA_FILE = "confusables.txt"


@functools.cache
def _data() -> str:
    files = importlib.metadata.files(DISTRIBUTION) or []
    for path in files:
        if path.name == DATA_FILE:
            return path.read_text(encoding="utf-8-sig")
    raise LookupError(f"{DATA_FILE} is not in the {DISTRIBUTION} distribution")


_LINE = re.compile(r"^([0-9A-F]{4,6})\s*;\s*([0-9A-F]{4,6}(?: [0-9A-F]{4,6})*)\s*;", re.MULTILINE)


@functools.cache
def prototypes() -> dict[str, str]:
    """``{character: prototype}`` from confusables.txt (each line ``source ; prototype ; MA``)."""
    return {
        chr(int(source, 16)): "".join(chr(int(cp, 16)) for cp in target.split())
        for source, target in _LINE.findall(_data())
    }


def data_version() -> str:
    """The Unicode version of the confusables data (``13.0.0``)."""
    match = re.search(r"^#\s*Version:\s*(\S+)", _data(), re.MULTILINE)
    return match.group(1) if match else "unknown"


def skeleton(text: str) -> str:
    """UTS #39's ``skeleton(X)``: NFD, each character mapped to its prototype, NFD again."""
    table = prototypes()
    mapped = "".join(table.get(char, char) for char in unicodedata.normalize("NFD", text))
    return unicodedata.normalize("NFD", mapped)


def username_key(username: str) -> str:
    """The key two look-alike usernames share (see the module's docstring)."""
    return skeleton(unicodedata.normalize("NFKC", username).casefold()).casefold()


def username_skeleton(username: str) -> str:
    """What users_db stores and indexes: the SHA-256 (hex) of :func:`username_key`.

    A digest, not the key itself: a key can be several times longer than its username (a Hangul
    syllable decomposes into jamo, each mapped), and a digest keeps every index entry 64 bytes."""
    return hashlib.sha256(username_key(username).encode("utf-8", "surrogatepass")).hexdigest()
