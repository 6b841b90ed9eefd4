"""A secret a step selects into a column never reaches a failing check's sample, its message,
the table's profile or anything else in the store: it shows as ``***``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests.conftest import Cli, ProjectFactory
from tests.test_secrets import files_holding

VALUE = "hunter2-s3cret-value"
PROJECT = {
    "andon.yaml": "name: leak\n",
    "pipelines/p/creds.sql": """
        /* ---
        checks:
          - {type: accepted_values, name: creds.token_known, column: token, values: [expected],
             severity: warn}
          - {type: not_null, name: creds.url_set, column: url}
        --- */
        SELECT 1 AS id, CAST({{ secret('api_token') }} AS VARCHAR) AS token,
               'https://u:' || {{ secret('api_token') }} || '@example.com' AS url,
               NULL AS note
    """,
}


@pytest.fixture
def proj(make_project: ProjectFactory, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("ANDON_SECRETS_KEY", raising=False)
    monkeypatch.setenv("ANDON_USER", "alice")
    root = make_project(PROJECT)
    monkeypatch.setattr("sys.stdin", io.StringIO(VALUE + "\n"))
    assert cli("secrets", "set", "api_token", "-p", root)[0] == 0
    return root


def test_a_failing_checks_sample_shows_a_secret_as_stars(proj: Path, cli: Cli) -> None:
    code, out, err = cli("run", "-p", proj, "--format", "json")
    assert code == 0, out + err  # a warning: the table is published
    assert VALUE not in out + err
    result = json.loads(out)
    failed = {c["name"]: c for c in result["checks"] if c["status"] == "failed"}
    sample = failed["creds.token_known"]["sample"][0]
    assert sample["token"] == "***" and sample["url"] == "https://u:***@example.com"
    code, out, err = cli("test", "-p", proj, "--format", "json")
    assert VALUE not in out + err and '"***"' in out
    code, out, err = cli("profile", "creds", "-p", proj, "--format", "json")
    assert code == 0 and VALUE not in out + err
    # the secret is in the table's own Parquet file (the step put it there), nowhere else
    assert [Path(f).suffix for f in files_holding(proj, VALUE.encode())] == [".parquet"]


def test_a_numeric_secret_read_as_a_number_shows_as_stars(
        make_project: ProjectFactory, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANDON_SECRETS_KEY", raising=False)
    monkeypatch.setenv("ANDON_USER", "alice")
    root = make_project({
        "andon.yaml": "name: pin\n",
        "pipelines/p/door.sql": """
            /* ---
            checks:
              - {type: accepted_values, name: door.pin_known, column: pin, values: [0],
                 severity: warn}
            --- */
            SELECT 1 AS id, CAST({{ secret('door_pin') }} AS INTEGER) AS pin
        """,
    })
    monkeypatch.setattr("sys.stdin", io.StringIO("480917\n"))
    assert cli("secrets", "set", "door_pin", "-p", root)[0] == 0
    code, out, err = cli("run", "-p", root, "--format", "json")
    assert code == 0, out + err
    assert "480917" not in out + err
    failed = {c["name"]: c for c in json.loads(out)["checks"] if c["status"] == "failed"}
    assert failed["door.pin_known"]["sample"][0]["pin"] == "***"
    code, out, err = cli("profile", "door", "-p", root, "--format", "json")
    assert code == 0 and "480917" not in out + err
