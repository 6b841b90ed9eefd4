/* ---
description: Hourly weather per origin airport, one row per airport and UTC hour.
owner: ops@example.com
--- */
SELECT
    origin,
    time_hour,
    temp,
    dewp,
    humid,
    wind_dir,
    wind_speed,
    wind_gust,
    precip,
    pressure,
    visib
FROM raw_weather
-- the source has a few duplicated hours (daylight saving changes): keep one
QUALIFY row_number() OVER (PARTITION BY origin, time_hour ORDER BY year, month, day, hour) = 1
