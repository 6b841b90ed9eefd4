"""One way to hide a value: every sample andon shows (CLI, UI, API, alerts, check failures)
goes through these functions for the columns tagged as personal data, and every message a
check writes through ``mask_text``."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from andon.classify import is_card, is_email, is_iban, is_ip, is_phone

MASK = "***"


def mask_value(value: Any) -> Any:
    """``***`` for any value; a missing one stays missing (that it is empty is no secret)."""
    return None if value is None else MASK


def mask_rows(rows: Sequence[Mapping[str, Any]], masked: Collection[str]
              ) -> list[dict[str, Any]]:
    """Rows as dicts with the ``masked`` columns hidden."""
    return [{k: (mask_value(v) if k in masked else v) for k, v in r.items()} for r in rows]


def mask_tuples(columns: Sequence[str], rows: Sequence[Sequence[Any]],
                masked: Collection[str]) -> list[tuple[Any, ...]]:
    """Rows as tuples (a query's result) with the ``masked`` columns hidden."""
    hide = [c in masked for c in columns]
    return [tuple(mask_value(v) if h else v for v, h in zip(r, hide, strict=True))
            for r in rows]


# personal data found in free text: a candidate shape, then the classifier's validator (an
# IBAN by mod 97, a card number by Luhn), so counts, dates and names of checks stay readable
_IN_TEXT: tuple[tuple[re.Pattern[str], Callable[[str], bool]], ...] = (
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
     is_email),
    (re.compile(r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}\b"), is_iban),
    (re.compile(r"(?<![\w])(?<![0-9][.,])[0-9](?:[ -]?[0-9]){12,18}(?!\w|[.,][0-9])"),
     is_card),
    (re.compile(r"\+[0-9][0-9 ().-]{5,18}[0-9]"), is_phone),
    (re.compile(r"(?<![\w.])[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?!\w|\.[0-9])"), is_ip),
    (re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])"), is_ip),
)


def mask_text(text: str, values: Iterable[Any] = ()) -> str:
    """``text`` (a check's message, an alert) with each of ``values`` (values of PII columns
    it quotes) and every e-mail address, IBAN, card number, international phone number or
    IP address in it shown as ``***``."""
    for v in values:
        s = None if v is None else str(v)
        if s and s.strip():
            text = re.sub(rf"(?<!\w){re.escape(s)}(?!\w)", MASK, text)
    for pattern, valid in _IN_TEXT:
        text = pattern.sub(_hide_if(valid), text)
    return text


def _hide_if(valid: Callable[[str], bool]) -> Callable[[re.Match[str]], str]:
    return lambda m: MASK if valid(m.group(0)) else m.group(0)


__all__ = ["MASK", "mask_rows", "mask_text", "mask_tuples", "mask_value"]
