/* ---
description: Airports by FAA code, with their IANA time zone.
owner: ref-data@example.com
checks:
  - {type: unique, columns: [faa]}
  - {type: length_between, column: faa, min: 3, max: 3}
  - {type: between, column: lat, min: -90, max: 90}
  - {type: between, column: lon, min: -180, max: 180}
--- */
SELECT faa, name, lat, lon, alt, tzone
FROM raw_airports
