"""Secrets: set/list/rm, encrypted at rest, the key file, use in SQL steps without the value
ever reaching plans, records, errors or fingerprints; missing secrets, wrong keys, names."""

from __future__ import annotations

import io
import json
import os
import stat
import threading
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

import andon
from andon.secrets import SecretError, get_secret, key_file, load_key, redact, set_secret
from tests.conftest import Cli, ProjectFactory

VALUE = "hunter2-s3cret-value"
PROJECT = {
    "andon.yaml": "name: sec\n",
    # the value is compared (by its md5: the step's text must not hold it), never selected
    "pipelines/p/auth.sql": """
        SELECT count(*) AS matches FROM (SELECT 1) t
        WHERE md5({{ secret('api_token') }}) = '73ef0597360c05335f593b477bd2c5e0'
    """,
}


@pytest.fixture
def proj(make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("ANDON_SECRETS_KEY", raising=False)
    monkeypatch.setenv("ANDON_USER", "alice")
    return make_project(PROJECT)


def set_(cli: Cli, monkeypatch: pytest.MonkeyPatch, root: Path, name: str, value: str,
         *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(value + "\n"))
    return cli("secrets", "set", name, "-p", root, *args)


def matches(cli: Cli, root: Path, env: str = "prod") -> int:
    code, out, err = cli("query", "SELECT matches FROM auth", "-p", root, "--env", env,
                         "--format", "json")
    assert code == 0, err
    return int(json.loads(out)[0]["matches"])


def files_holding(root: Path, needle: bytes) -> list[str]:
    return [str(p) for p in (root / ".andon").rglob("*") if p.is_file()
            and needle in p.read_bytes()]


def test_set_list_rm(proj: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = set_(cli, monkeypatch, proj, "api_token", VALUE)
    assert code == 0 and "stored secret api_token for every environment" in out, err
    assert set_(cli, monkeypatch, proj, "api_token", "dev-value", "--env", "dev")[0] == 0
    code, out, _ = cli("secrets", "list", "-p", proj, "--format", "json")
    listed = json.loads(out)
    assert [(s["name"], s["environment"], s["by"]) for s in listed] == [
        ("api_token", "*", "alice"), ("api_token", "dev", "alice")]
    assert VALUE not in out and "dev-value" not in out
    code, out, _ = cli("secrets", "rm", "api_token", "--env", "dev", "-p", proj)
    assert code == 0
    listed = json.loads(cli("secrets", "list", "-p", proj, "--format", "json")[1])
    assert [(s["name"], s["environment"]) for s in listed] == [("api_token", "*")]
    code, _, err = cli("secrets", "rm", "api_tokn", "-p", proj)
    assert code != 0 and "no secret 'api_tokn'" in err and "did you mean 'api_token'" in err
    code, _, err = set_(cli, monkeypatch, proj, "empty", "")
    assert code != 0 and "empty secret value" in err


def test_encrypted_at_rest_with_a_private_key_file(
    proj: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not key_file(proj).exists()
    assert set_(cli, monkeypatch, proj, "api_token", VALUE)[0] == 0
    key = key_file(proj)
    assert key.exists()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    Fernet(key.read_bytes().strip())  # a valid key
    # the store (with its journal) holds no plaintext
    assert files_holding(proj, VALUE.encode()) == []
    project = andon.Project.load(proj)
    assert get_secret(project.store, proj, "api_token", "prod") == VALUE
    project.close()


def test_used_in_a_sql_step_the_value_reaches_only_the_query(
    proj: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert set_(cli, monkeypatch, proj, "api_token", VALUE)[0] == 0
    code, out, err = cli("plan", "-p", proj, "--format", "json")
    assert code == 0 and VALUE not in out
    fp = json.loads(out)["steps"][0]["fingerprint"]
    code, out, err = cli("run", "-p", proj)
    assert code == 0, err
    assert VALUE not in out + err
    assert matches(cli, proj) == 1  # the value reached the query
    run = cli("runs", "show", "latest", "-p", proj, "--format", "json")[1]
    assert VALUE not in run
    assert files_holding(proj, VALUE.encode()) == []  # store, logs, manifests, data

    # another value is not another fingerprint: nothing to rebuild
    assert set_(cli, monkeypatch, proj, "api_token", "rotated")[0] == 0
    p = json.loads(cli("plan", "-p", proj, "--format", "json")[1])
    assert p["steps"][0]["fingerprint"] == fp and p["steps"][0]["action"] == "reuse"


def test_per_environment_values(proj: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    assert set_(cli, monkeypatch, proj, "api_token", "shared")[0] == 0
    assert set_(cli, monkeypatch, proj, "api_token", VALUE, "--env", "dev")[0] == 0
    assert cli("run", "-p", proj, "-q")[0] == 0
    project = andon.Project.load(proj)
    assert get_secret(project.store, proj, "api_token", "dev") == VALUE
    assert get_secret(project.store, proj, "api_token", "prod") == "shared"
    assert get_secret(project.store, proj, "api_token", "qa") == "shared"
    project.close()
    assert matches(cli, proj) == 0  # prod's query got the value for every environment


def test_an_error_never_shows_the_value(
    proj: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    (proj / "pipelines/p/auth.sql").write_text(
        "SELECT CAST({{ secret('api_token') }} AS INTEGER) AS n\n")
    assert set_(cli, monkeypatch, proj, "api_token", VALUE)[0] == 0
    code, out, err = cli("run", "-p", proj)
    assert code != 0
    assert "Could not convert string '***'" in out + err
    assert VALUE not in out + err
    run = cli("runs", "show", "latest", "-p", proj, "--format", "json")[1]
    assert "***" in run and VALUE not in run
    assert files_holding(proj, VALUE.encode()) == []


def test_a_missing_secret_names_itself_and_the_step(proj: Path, cli: Cli) -> None:
    assert cli("env", "create", "dev", "--empty", "-p", proj)[0] == 0
    code, out, err = cli("run", "-p", proj, "--env", "dev")
    assert code != 0
    text = out + err
    assert "secret 'api_token' is not set for environment 'dev'" in text
    assert "auth" in text and "andon secrets set api_token --env dev" in text


def test_a_wrong_key_is_a_clear_error_never_garbage(
    proj: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANDON_SECRETS_KEY", Fernet.generate_key().decode())
    assert set_(cli, monkeypatch, proj, "api_token", VALUE)[0] == 0
    assert not key_file(proj).exists()  # the key came from the environment
    monkeypatch.setenv("ANDON_SECRETS_KEY", Fernet.generate_key().decode())
    code, out, err = cli("run", "-p", proj)
    assert code != 0
    assert "secret 'api_token' cannot be decrypted" in out + err
    assert "auth" in out + err
    project = andon.Project.load(proj)
    with pytest.raises(SecretError, match="cannot be decrypted"):
        get_secret(project.store, proj, "api_token", "prod")
    monkeypatch.setenv("ANDON_SECRETS_KEY", "not-a-key")
    with pytest.raises(SecretError, match="not a valid Fernet key"):
        get_secret(project.store, proj, "api_token", "prod")
    monkeypatch.delenv("ANDON_SECRETS_KEY")
    with pytest.raises(SecretError, match="no secrets key"):
        get_secret(project.store, proj, "api_token", "prod")
    project.close()


@pytest.mark.parametrize("name", ["bad name", "1abc", "a/b", "", "x" * 129])
def test_invalid_secret_names(proj: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch,
                              name: str) -> None:
    code, _, err = set_(cli, monkeypatch, proj, name, VALUE)
    assert code != 0 and "invalid secret name" in err
    assert json.loads(cli("secrets", "list", "-p", proj, "--format", "json")[1]) == []


def test_invalid_environment_of_a_secret(
    proj: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = set_(cli, monkeypatch, proj, "api_token", VALUE, "--env", "bad env")
    assert code != 0 and "invalid environment name" in err


def test_an_invalid_secret_name_in_a_step_is_a_config_error(proj: Path, cli: Cli) -> None:
    (proj / "pipelines/p/auth.sql").write_text("SELECT {{ secret('bad name') }} AS s\n")
    code, _, err = cli("plan", "-p", proj)
    assert code != 0 and "invalid secret name 'bad name'" in err and "auth.sql" in err


def test_only_those_who_may_run_there_change_secrets(
    proj: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("users", "add", "alice", "--role", "admin", "-p", proj)[0] == 0
    assert cli("users", "add", "bob", "--role", "developer", "-p", proj)[0] == 0
    assert cli("users", "add", "vic", "--role", "viewer", "-p", proj)[0] == 0
    monkeypatch.setenv("ANDON_USER", "bob")
    assert set_(cli, monkeypatch, proj, "api_token", VALUE, "--env", "dev")[0] == 0
    code, _, err = set_(cli, monkeypatch, proj, "api_token", VALUE)  # every environment
    assert code != 0 and "may not set secret" in err
    code, _, err = set_(cli, monkeypatch, proj, "api_token", VALUE, "--env", "prod")
    assert code != 0 and "may not set secret" in err
    monkeypatch.setenv("ANDON_USER", "vic")
    code, _, err = cli("secrets", "rm", "api_token", "--env", "dev", "-p", proj)
    assert code != 0 and "may not remove secret" in err
    listed = json.loads(cli("secrets", "list", "-p", proj, "--format", "json")[1])
    assert [(s["name"], s["environment"]) for s in listed] == [("api_token", "dev")]


def test_a_key_created_meanwhile_by_another_process_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two first uses at once: the second finds the file gone missing a moment ago, then
    present. It must use the winner's key (or secrets set by one are unreadable by the
    other), not crash and not overwrite it."""
    monkeypatch.delenv("ANDON_SECRETS_KEY", raising=False)
    path = key_file(tmp_path)
    winner = Fernet.generate_key()
    real_exists = Path.exists

    def exists_then_created(self: Path) -> bool:
        found = real_exists(self)
        if self == path and not found:  # the other process writes it right after our look
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(winner)
            path.chmod(0o600)
        return found

    monkeypatch.setattr(Path, "exists", exists_then_created)
    assert load_key(tmp_path, create=True) == winner
    monkeypatch.setattr(Path, "exists", real_exists)
    assert path.read_bytes() == winner
    assert [p.name for p in path.parent.iterdir()] == ["secrets.key"]  # no temporary left


def test_concurrent_first_use_agrees_on_one_key(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANDON_SECRETS_KEY", raising=False)
    keys: list[bytes] = []
    errors: list[BaseException] = []
    start = threading.Barrier(16)

    def one() -> None:
        try:
            start.wait()
            keys.append(load_key(tmp_path, create=True))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=one) for _ in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert len(set(keys)) == 1 and keys[0] == key_file(tmp_path).read_bytes().strip()


def test_set_secret_directly_never_stores_plaintext(tmp_path: Path, make_project: ProjectFactory,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANDON_SECRETS_KEY", raising=False)
    root = make_project(PROJECT)
    project = andon.Project.load(root)
    set_secret(project.store, root, "db.password", VALUE, who="t")
    set_secret(project.store, root, "db.password", "rotated-Zq9", who="t")  # replaces
    assert get_secret(project.store, root, "db.password", "any") == "rotated-Zq9"
    project.close()
    assert files_holding(root, b"rotated-Zq9") == [] and files_holding(root, VALUE.encode()) == []
    assert os.stat(key_file(root)).st_mode & 0o077 == 0


@pytest.mark.parametrize("value", ["it's-a-quoted-secret", "x" * 40 + "-a-long-one-cut-short"])
def test_no_form_of_the_value_reaches_an_error(
    proj: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """Bound as a parameter, the value is not in the SQL text DuckDB quotes in ``LINE 1:``;
    a message quoting it escaped or in part is redacted too."""
    (proj / "pipelines/p/auth.sql").write_text(
        "SELECT CAST({{ secret('api_token') }} AS INTEGER) AS n, nope\n")
    assert set_(cli, monkeypatch, proj, "api_token", value)[0] == 0
    code, out, err = cli("run", "-p", proj)
    assert code != 0 and "nope" in out + err
    run = cli("runs", "show", "latest", "-p", proj, "--format", "json")[1]
    for text in (out + err, run):
        assert value not in text and value.replace("'", "''") not in text
        assert value[:12] not in text and value[-12:] not in text
    assert files_holding(proj, value[:12].encode()) == []


def test_redact_hides_escaped_and_partial_forms() -> None:
    secret = "it's-a-very-long-secret-value"
    assert redact("LINE 1: ...'it''s-a-very-long-secr", [secret]) == "LINE 1: ...'***"
    assert redact("a short b", ["short"]) == "a *** b"
    assert redact("no secret here", [secret]) == "no secret here"


def test_a_lost_key_is_never_silently_replaced(
    proj: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert set_(cli, monkeypatch, proj, "api_token", VALUE)[0] == 0
    key = key_file(proj)
    saved = key.read_bytes()
    key.unlink()
    code, _, err = set_(cli, monkeypatch, proj, "other", "another-value")
    assert code != 0 and "the secrets key is missing" in err and "1 stored secret" in err
    assert "restore .andon/secrets.key" in err
    assert not key.exists()
    key.write_bytes(saved)  # restored: everything decrypts again
    assert set_(cli, monkeypatch, proj, "other", "another-value")[0] == 0
    project = andon.Project.load(proj)
    assert get_secret(project.store, proj, "api_token", "prod") == VALUE
    project.close()
