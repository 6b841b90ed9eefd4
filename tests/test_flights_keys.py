"""The flights example's keys stay unique on larger data: flight numbers of any width."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tests.conftest import Cli


def test_flight_numbers_of_five_digits_make_distinct_keys(flights: Path, cli: Cli) -> None:
    incoming = flights / "incoming/flights"
    january = incoming / "flights_2013_01.csv"
    with january.open(newline="") as f:
        reader = csv.DictReader(f)
        header = list(reader.fieldnames or [])
        rows = [r for _, r in zip(range(200), reader, strict=False)]
    for p in incoming.glob("*.csv"):
        p.unlink()
    # the same carrier, day, time and origin: only the flight number tells them apart
    twin = {**rows[0], "flight": "1000"}
    wide = {**rows[0], "flight": "10000"}
    wider = {**rows[0], "flight": "100001"}
    with january.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows([*rows[1:], twin, wide, wider])
    code, out, err = cli("run", "-p", flights, "-q")
    assert code == 0, out + err
    code, out, err = cli(
        "query", "SELECT flight, flight_id FROM flights WHERE flight IN (1000, 10000, 100001) "
        "ORDER BY flight", "-p", flights, "--format", "json")
    assert code == 0, err
    found = json.loads(out)
    assert [r["flight"] for r in found] == [1000, 10000, 100001]
    assert len({r["flight_id"] for r in found}) == 3
    assert all(f"-{r['flight']}-" in r["flight_id"] for r in found)
