/* ---
description: Airports by FAA code, with their IANA time zone.
owner: ref-data@example.com
--- */
SELECT faa, name, lat, lon, alt, tzone
FROM raw_airports
