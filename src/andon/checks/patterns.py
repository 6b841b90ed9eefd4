"""Named regular expressions for the ``regex`` check (full-match, DuckDB RE2 syntax)."""

from __future__ import annotations

PATTERNS: dict[str, str] = {
    "us_zip5": r"[0-9]{5}",
    "us_zip": r"[0-9]{5}(-[0-9]{4})?",
    "us_phone": r"(\+1[ .-]?)?\(?[0-9]{3}\)?[ .-]?[0-9]{3}[ .-]?[0-9]{4}",
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
    "iso_date": r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])",
    "iso_datetime": r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?"
                    r"(Z|[+-][0-9]{2}:?[0-9]{2})?",
    "uuid": r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
    "ipv4": r"((25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])",
    "url": r"https?://[^\s/$.?#].[^\s]*",
    "iata_airport": r"[A-Z]{3}",
    "icao_airport": r"[A-Z]{4}",
    "faa_airport": r"[A-Z0-9]{3,4}",
    "us_tail_number": r"N[1-9][0-9]{0,4}[A-Z]{0,2}",
    "alpha": r"[A-Za-z]+",
    "alphanumeric": r"[A-Za-z0-9]+",
    "integer": r"[+-]?[0-9]+",
    "decimal": r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)",
}
