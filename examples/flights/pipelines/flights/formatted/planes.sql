/* ---
description: Aircraft by tail number (the registry does not list every plane that flew).
owner: ref-data@example.com
checks:
  - {type: unique, columns: [tailnum]}
  - {type: between, column: year_built, min: 1900, max: 2013}
  - {type: between, column: seats, min: 1, max: 900}
  - type: accepted_values
    column: engine
    values: [Turbo-fan, Turbo-jet, Turbo-prop, Turbo-shaft, Reciprocating, 4 Cycle]
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
