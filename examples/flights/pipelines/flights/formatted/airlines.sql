/* ---
description: Airlines by carrier code.
owner: ref-data@example.com
checks:
  - {type: unique, columns: [carrier]}
  - {type: length_between, column: carrier, min: 2, max: 2}
  - {type: not_null, column: name}
--- */
SELECT trim(carrier) AS carrier, trim(name) AS name
FROM raw_airlines
