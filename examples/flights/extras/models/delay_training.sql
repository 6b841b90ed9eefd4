/* ---
description: >
  Flights that departed, with what was known before departure (schedule, distance) and the
  keys of the feature service departure_delay (origin, carrier, tailnum, the scheduled
  departure as the event time), labelled delayed when they left more than 15 minutes late:
  the entity rows of the training set delay_features.
owner: analytics@example.com
zone: features
checks:
  - {type: not_null, column: delayed}
  - {type: accepted_values, column: delayed, values: [0, 1]}
--- */
SELECT
    flight_id,
    origin,
    carrier,
    tailnum,
    timezone('America/New_York', sched_dep_at) AS event_timestamp,
    CAST(dep_delay > 15 AS INTEGER) AS delayed,
    CAST(date_part('hour', timezone('UTC', sched_dep_at)) AS INTEGER) AS sched_hour_utc,
    CAST(dayofweek(flight_date) AS INTEGER) AS weekday,
    CAST(month(flight_date) AS INTEGER) AS month,
    distance
FROM flights_enriched
WHERE NOT cancelled AND dep_delay IS NOT NULL
