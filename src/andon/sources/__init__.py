"""Sources andon pulls itself: a database table or query (``kind: database``) and a JSON
API (``kind: http``).

A pull writes a snapshot file (Parquet for a database, JSON lines for an API) and lands it
like an arriving file: hashed, kept read-only in the landing zone (the temporal zone: what
arrived when), recorded, then ingested by the same step and checks as a files source, so
every ingest can be replayed. A full pull's snapshot supersedes the previous one; an
incremental pull (``cursor:``) lands only the rows past the last pull's cursor, and the
source reads all its snapshots. The cursor is kept per source, whatever the environment,
like the landed files."""
