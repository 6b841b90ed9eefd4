"""Names taken from URLs (tables, environments, checks, tokens): refused unless they are
plain names, so no path, no traversal and no SQL ever comes in through a URL."""

from __future__ import annotations

import re

from andon.errors import AndonError

SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,254}$")


class InvalidName(AndonError):
    """A name in a URL that cannot name anything andon stores."""


def checked(value: str, what: str) -> str:
    if not SEGMENT.match(value) or ".." in value:
        raise InvalidName(f"invalid {what} name {value!r} in the URL",
                          hint=f"a {what} name is letters, digits, '_', '-', '.' or ':', "
                               "starting with a letter, digit or '_'; paths are refused")
    return value
