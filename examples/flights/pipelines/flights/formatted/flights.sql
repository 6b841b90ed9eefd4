/* ---
description: One row per scheduled flight, typed, with departure timestamps and a cancelled flag.
owner: ops@example.com
tags: [daily]
materialized: incremental
time_column: sched_dep_at
grain: day
checks:
  - {type: not_null, column: flight_id}
  - {type: unique, columns: [flight_id]}
  - {type: accepted_values, column: origin, values: [EWR, JFK, LGA]}
  - {type: regex, column: carrier, pattern: "[A-Z0-9]{2}"}
  - type: regex
    name: flights.tailnum_conforms
    description: US registrations (N-numbers); a few foreign or malformed ones are tolerated.
    column: tailnum
    pattern: us_tail_number
    severity: warn
    max_failing_pct: 0.5
  - type: expression
    name: flights.departed_or_cancelled
    description: A flight without departure time must be a cancelled one.
    expr: cancelled OR dep_at IS NOT NULL
  - {type: between, column: dep_delay, min: -120, max: 1500}
  - {type: between, column: arr_delay, min: -120, max: 1500}
  - type: temporal_order
    name: flights.arrival_after_departure
    description: Local clock times across time zones make a few look early; warn beyond 1%.
    start: dep_at
    end: arr_at
    severity: warn
    max_failing_pct: 1
  - type: sql
    name: flights.rows_per_month
    description: Rows of the newest month, under statistical process control.
    metric: true
    sql: >
      SELECT count(*) FROM {{ table }} WHERE date_trunc('month', flight_date) =
        (SELECT max(date_trunc('month', flight_date)) FROM {{ table }})
    severity: warn
    spc: {window: 12, min_history: 4, k: 3}
  - type: balance
    name: flights.formatted_equals_landed_minus_rejects
    description: Every landed row that parsed reaches the formatted table (rejects are kept apart).
    expr: count(*)
    other: raw_flights
  - type: relationship
    name: flights.tailnum_in_planes
    description: The plane registry misses some tail numbers; warn when more than 10% are unknown.
    column: tailnum
    to: planes.tailnum
    severity: warn
    max_failing_pct: 10
--- */
SELECT
    -- no padding of the flight number: lpad truncates longer values, and keys would collide
    carrier || '-' || CAST(flight AS VARCHAR) || '-'
        || strftime(make_date(year, month, day), '%Y%m%d') || '-'
        || lpad(CAST(sched_dep_time AS VARCHAR), 4, '0') || '-' || origin AS flight_id,
    carrier,
    flight,
    tailnum,
    origin,
    dest,
    make_date(year, month, day) AS flight_date,
    make_timestamp(year, month, day, sched_dep_time // 100, sched_dep_time % 100, 0)
        AS sched_dep_at,
    -- actual times: scheduled plus delay, which stays right across midnight
    make_timestamp(year, month, day, sched_dep_time // 100, sched_dep_time % 100, 0)
        + to_minutes(CAST(dep_delay AS BIGINT)) AS dep_at,
    -- arrival in local time at the destination; overnight flights arrive the next day
    make_timestamp(year, month, day, sched_arr_time // 100 % 24, sched_arr_time % 100, 0)
        + CASE WHEN sched_arr_time < sched_dep_time THEN INTERVAL 1 DAY ELSE INTERVAL 0 DAY END
        + to_minutes(CAST(arr_delay AS BIGINT)) AS arr_at,
    dep_delay,
    arr_delay,
    dep_time IS NULL AS cancelled,
    air_time,
    distance,
    time_hour
FROM raw_flights
