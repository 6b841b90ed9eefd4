/* ---
description: Airlines by carrier code.
owner: ref-data@example.com
--- */
SELECT trim(carrier) AS carrier, trim(name) AS name
FROM raw_airlines
