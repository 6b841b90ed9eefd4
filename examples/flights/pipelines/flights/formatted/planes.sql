/* ---
description: Aircraft by tail number (the registry does not list every plane that flew).
owner: ref-data@example.com
--- */
SELECT
    tailnum,
    year AS year_built,
    type,
    manufacturer,
    model,
    engines,
    seats,
    engine
FROM raw_planes
