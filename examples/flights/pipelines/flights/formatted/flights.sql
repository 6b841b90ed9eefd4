/* ---
description: One row per scheduled flight, typed, with departure timestamps and a cancelled flag.
owner: ops@example.com
tags: [daily]
materialized: incremental
time_column: sched_dep_at
--- */
SELECT
    carrier || lpad(CAST(flight AS VARCHAR), 4, '0') || '-'
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
    -- actual departure: local clock time, may pass midnight (dep_time 2400 and later)
    CASE WHEN dep_time IS NOT NULL
        THEN make_timestamp(year, month, day, 0, 0, 0)
             + to_minutes(CAST((dep_time // 100) * 60 + dep_time % 100 AS BIGINT))
    END AS dep_at,
    dep_delay,
    arr_delay,
    dep_time IS NULL AS cancelled,
    air_time,
    distance,
    time_hour
FROM raw_flights
