/* ---
description: Hourly weather per origin airport, one row per airport and UTC hour.
owner: ops@example.com
checks:
  - {type: unique, columns: [origin, time_hour]}
  - {type: accepted_values, column: origin, values: [EWR, JFK, LGA]}
  - {type: between, column: humid, min: 0, max: 100}
  - type: between
    name: weather.wind_speed_plausible
    description: >
      The source holds one reading of 1,048 mph (a faulty sensor): worth a look, not worth
      stopping the line, since only that hour's flights get a wrong wind speed.
    column: wind_speed
    min: 0
    max: 150
    severity: warn
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
