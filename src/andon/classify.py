"""PII classification: which columns hold e-mail addresses, phone numbers, IBANs, card
numbers, IP addresses or personal names, judged by the column's name and by validating a
sample of its values (IBAN by mod-97, card numbers by Luhn), with a confidence per column.

A detector is data (a tag, the column names that suggest it, a validator of one value);
``classify`` scores every column of a sample against all of them.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SAMPLE_ROWS = 1_000  # values read per column to classify it
MIN_CONFIDENCE = 0.5  # below: not tagged
VALUE_SHARE = 0.8  # the share of non-empty sampled values that must validate for a match


@dataclass(frozen=True)
class Detector:
    tag: str
    names: re.Pattern[str]  # column names that suggest the class
    valid: Callable[[str], bool]  # one value's validator


_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_PHONE = re.compile(r"\+?\(?[0-9][0-9 ().-]{5,18}[0-9]")


def is_email(v: str) -> bool:
    return _EMAIL.fullmatch(v.strip()) is not None


def is_phone(v: str) -> bool:
    v = v.strip()
    digits = sum(ch.isdigit() for ch in v)
    # a bare number is a phone only with its country code: ids and amounts are not phones
    bare = v.isdigit()
    return (_PHONE.fullmatch(v) is not None and 7 <= digits <= 15
            and (not bare or v.startswith("+")) and not _looks_like_date(v))


def _looks_like_date(v: str) -> bool:
    return re.fullmatch(r"\d{4}-\d{2}-\d{2}.*|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}", v) is not None


def is_iban(v: str) -> bool:
    """ISO 13616: country, check digits, account; valid when mod 97 of the rearranged
    number is 1."""
    s = v.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}", s):
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def is_card(v: str) -> bool:
    s = re.sub(r"[ -]", "", v.strip())
    return s.isdigit() and 13 <= len(s) <= 19 and s[0] in "2345689" and luhn(s)


def is_ip(v: str) -> bool:
    s = v.strip()
    if "." not in s and ":" not in s:
        return False
    try:
        ipaddress.ip_address(s)
    except ValueError:
        return False
    return True


# common given names and surnames (a list, not a model: a name column is mostly confirmed
# by its header; values lift the confidence and find unnamed ones)
_NAMES = """
james john robert michael william david richard joseph thomas charles christopher daniel
matthew anthony mark donald steven paul andrew joshua kenneth kevin brian george timothy
ronald edward jason jeffrey ryan jacob gary nicholas eric jonathan stephen larry justin
scott brandon benjamin samuel gregory alexander patrick frank raymond jack dennis jerry
mary patricia jennifer linda elizabeth barbara susan jessica sarah karen lisa nancy betty
margaret sandra ashley kimberly emily donna michelle carol amanda dorothy melissa deborah
stephanie rebecca sharon laura cynthia kathleen amy angela shirley anna brenda pamela emma
nicole helen samantha katherine christine debra rachel carolyn janet catherine maria heather
diane ruth julie olivia joyce virginia victoria kelly lauren christina joan evelyn judith
anne marie pierre jean luc sophie hans peter klaus anna eva jan lars nils ingrid olga ivan
juan jose carlos luis miguel ana lucia carmen pedro pablo giulia marco luca paolo francesca
smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez lopez
gonzalez wilson anderson taylor moore jackson martin lee perez thompson white harris clark
lewis robinson walker young allen king wright hill green adams baker nelson carter mitchell
roberts turner phillips campbell parker evans edwards collins stewart morris murphy cook
rogers morgan peterson cooper reed bailey bell kelly howard ward cox richardson wood watson
brooks bennett gray james hughes price sanders myers long ross foster muller schmidt schneider
fischer weber meyer wagner becker schulz hoffmann dupont durand bernard dubois moreau laurent
rossi russo ferrari esposito bianchi romano colombo ricci
"""
NAMES = frozenset(_NAMES.split())


def is_name(v: str) -> bool:
    parts = [p for p in re.split(r"[\s,]+", v.strip().lower()) if p]
    known = sum(p in NAMES for p in parts)
    return 0 < len(parts) <= 3 and all(p.replace("-", "").replace("'", "").isalpha()
                                       for p in parts) and 2 * known >= len(parts)


def _named(*words: str) -> re.Pattern[str]:
    """Column names holding one of ``words`` as a whole part (``cancelled`` holds no cell)."""
    return re.compile(r"(^|_)(" + "|".join(words) + r")(_|$)")


DETECTORS: tuple[Detector, ...] = (
    Detector("pii:email", _named("e_?mail", "mail_?address", "email_?address"), is_email),
    Detector("pii:phone", _named("phone", "mobile", "cell", "cellphone", "msisdn", "tel",
                                 "telephone", "fax"), is_phone),
    Detector("pii:iban", _named("iban", "bank_?account"), is_iban),
    Detector("pii:card", _named("card_?(no|num|number)", "credit_?card", "pan", "cc_?num"),
             is_card),
    Detector("pii:ip", _named("ip", "ip_?addr(ess)?", "ipv4", "ipv6", "client_?addr"), is_ip),
    Detector("pii:name", _named("(first|last|given|family|full|sur|middle)_?name", "name",
                                "customer_?name", "person"), is_name),
)


@dataclass(frozen=True)
class ColumnClass:
    """A column's class: ``tag`` with ``confidence`` (0..1), found ``by`` name, values or
    both (``share``: the share of sampled values that validate)."""

    tag: str
    confidence: float
    by: str
    share: float

    def to_dict(self) -> dict[str, Any]:
        return {"tag": self.tag, "confidence": self.confidence, "by": self.by,
                "share": self.share}


def classify_column(name: str, values: Iterable[Any]) -> ColumnClass | None:
    """The best class of one column, from its name and a sample of its values (each
    distinct value validated once; a detector stops as soon as too many values failed for
    it to match)."""
    counts = Counter(t for t in (str(v) for v in values if v is not None) if t.strip())
    total = sum(counts.values())
    lowered = name.lower()
    best: ColumnClass | None = None
    for d in DETECTORS:
        named = d.names.search(lowered) is not None
        share = _share(d.valid, counts, total, 0.3 if named else VALUE_SHARE)
        if named and share >= VALUE_SHARE:
            conf, by = min(1.0, 0.6 + 0.4 * share), "name+values"
        elif share >= VALUE_SHARE:
            conf, by = 0.9 * share, "values"
        elif named and (not total or share >= 0.3):
            conf, by = 0.6 if not total else 0.5 + 0.3 * share, "name"
        else:
            continue
        if conf >= MIN_CONFIDENCE and (best is None or conf > best.confidence):
            best = ColumnClass(d.tag, round(conf, 3), by, round(share, 3))
    return best


def _share(valid: Callable[[str], bool], counts: Counter[str], total: int, needed: float
           ) -> float:
    """The share of ``total`` values that ``valid`` accepts; 0 as soon as it cannot reach
    ``needed`` any more."""
    if not total:
        return 0.0
    allowed = total - needed * total + 1e-9  # invalid values a match may have
    ok = bad = 0
    for value, n in counts.items():
        if valid(value):
            ok += n
        else:
            bad += n
            if bad > allowed:
                return 0.0
    return ok / total


def classify(columns: Sequence[str], sample: Mapping[str, Sequence[Any]]
             ) -> dict[str, ColumnClass]:
    """Every column that holds a known class of personal data."""
    out: dict[str, ColumnClass] = {}
    for col in columns:
        found = classify_column(col, sample.get(col, ()))
        if found is not None:
            out[col] = found
    return out


__all__ = ["DETECTORS", "ColumnClass", "Detector", "classify", "classify_column", "is_card",
           "is_email", "is_iban", "is_ip", "is_name", "is_phone", "luhn"]
