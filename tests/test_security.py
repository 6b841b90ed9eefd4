"""What a step, a query, a parameter or a project file cannot do: read host files, write files,
inject SQL, run unsandboxed Jinja, blow up the YAML loader."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests.conftest import Cli, ProjectFactory


def _run(cli: Cli, root: Path, *args: str) -> tuple[int, str]:
    code, out, err = cli("run", "-p", root, *args)
    return code, out + err


def test_a_sql_step_cannot_read_a_host_file(make_project: ProjectFactory, cli: Cli,
                                            tmp_path: Path) -> None:
    outside = tmp_path / "outside.csv"
    outside.write_text("who\nmallory\n")
    root = make_project({
        "andon.yaml": "name: sandbox\n",
        "pipelines/p/leak.sql": f"SELECT * FROM read_csv('{outside}')\n",
    })
    code, text = _run(cli, root)
    assert code != 0
    assert "leak" in text and "Permission Error" in text
    assert "mallory" not in text
    code, out, _ = cli("tables", "-p", root, "--format", "json")
    assert "leak" not in out


def test_a_sql_step_cannot_read_the_secrets_key(make_project: ProjectFactory, cli: Cli,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANDON_SECRETS_KEY", raising=False)
    root = make_project({
        "andon.yaml": "name: sandbox\n",
        "pipelines/p/key.sql": "SELECT * FROM read_text('.andon/secrets.key')\n",
    })
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret-value-123\n"))
    assert cli("secrets", "set", "token", "-p", root)[0] == 0
    key = (root / ".andon" / "secrets.key").read_text().strip()
    monkeypatch.chdir(root)
    code, text = _run(cli, root)
    assert code != 0 and "Permission Error" in text and key not in text


def test_steps_still_read_their_inputs_and_write_their_artifacts(
    make_project: ProjectFactory, cli: Cli
) -> None:
    root = make_project({
        "andon.yaml": "name: sandbox\n",
        "pipelines/p/a.sql": "SELECT i FROM range(5) t(i)\n",
        "pipelines/p/b.sql": "SELECT sum(i) AS s FROM a\n",
    })
    code, text = _run(cli, root)
    assert code == 0, text
    code, out, err = cli("query", "SELECT s FROM b", "-p", root, "--format", "json")
    assert code == 0 and json.loads(out) == [{"s": 10}], err


@pytest.mark.parametrize("sql", [
    "COPY (SELECT 99 AS i) TO '{file}' (FORMAT parquet)",
    "SELECT 1; COPY (SELECT 99 AS i) TO '{file}' (FORMAT parquet)",
    "CREATE TABLE x AS SELECT 1",
    "ATTACH '{dir}/evil.duckdb'",
])
def test_query_only_reads(make_project: ProjectFactory, cli: Cli, sql: str) -> None:
    root = make_project({
        "andon.yaml": "name: sandbox\n",
        "pipelines/p/a.sql": "SELECT i FROM range(3) t(i)\n",
    })
    assert _run(cli, root)[0] == 0
    artifact = next((root / ".andon" / "warehouse" / "a").rglob("*.parquet"))
    before = artifact.read_bytes()
    code, _, err = cli("query", sql.format(file=artifact, dir=artifact.parent), "-p", root)
    assert code != 0 and "runs one SELECT statement" in err
    assert artifact.read_bytes() == before
    assert not (artifact.parent / "evil.duckdb").exists()


def test_a_select_in_query_cannot_read_other_files(make_project: ProjectFactory, cli: Cli,
                                                   tmp_path: Path) -> None:
    outside = tmp_path / "outside.csv"
    outside.write_text("who\nmallory\n")
    root = make_project({
        "andon.yaml": "name: sandbox\n",
        "pipelines/p/a.sql": "SELECT i FROM range(3) t(i)\n",
    })
    assert _run(cli, root)[0] == 0
    code, out, err = cli("query", f"SELECT * FROM read_csv('{outside}')", "-p", root)
    assert code != 0 and "Permission Error" in err and "mallory" not in out + err


PARAMS = {
    "andon.yaml": """
        name: params
        params:
          who: {type: string, default: alice}
          day: {type: date, default: 2024-01-31}
          n: 3
    """,
    "pipelines/p/people.sql": """
        SELECT * FROM (VALUES ('alice', 1), ('O''Brien', 2)) t(name, id)
        WHERE name = {{ who }} AND {{ day }} = DATE '2024-01-31' AND id <= {{ n }}
    """,
}


def _rows(cli: Cli, root: Path, sql: str) -> list[dict[str, object]]:
    code, out, err = cli("query", sql, "-p", root, "--format", "json")
    assert code == 0, err
    rows: list[dict[str, object]] = json.loads(out)
    return rows


def test_a_string_parameter_is_data_never_sql(make_project: ProjectFactory, cli: Cli) -> None:
    root = make_project(PARAMS)
    code, text = _run(cli, root, "--param", "who=O'Brien")
    assert code == 0, text
    assert _rows(cli, root, "SELECT name FROM people") == [{"name": "O'Brien"}]
    code, text = _run(cli, root, "--param", "who=x' OR 1=1 UNION ALL SELECT 'pwned', 9 --")
    assert code == 0, text
    assert _rows(cli, root, "SELECT count(*) AS n FROM people") == [{"n": 0}]


def test_jinja_in_a_step_is_sandboxed(make_project: ProjectFactory, cli: Cli) -> None:
    root = make_project({
        "andon.yaml": "name: jinja\nparams: {who: alice}\n",
        "pipelines/p/evil.sql": """
            SELECT {{ who.__class__.__mro__[1].__subclasses__() | length }} AS n
        """,
    })
    code, _, err = cli("plan", "-p", root)  # a read-only command loads the project too
    assert code != 0
    assert "evil.sql" in err and "template" in err


def test_a_typo_of_an_environment_is_refused_not_created(make_project: ProjectFactory,
                                                         cli: Cli) -> None:
    root = make_project({
        "andon.yaml": "name: envs\nenvironments: {dev: {params: {}}}\n",
        "pipelines/p/a.sql": "SELECT 1 AS one\n",
    })
    assert _run(cli, root)[0] == 0  # prod, the default, is created by its first run
    assert _run(cli, root, "--env", "dev")[0] == 0  # declared in andon.yaml
    code, text = _run(cli, root, "--env", "dve")
    assert code != 0 and "no environment named 'dve'" in text
    assert "did you mean 'dev'" in text and "andon env create dve" in text
    code, out, _ = cli("env", "list", "-p", root, "--format", "json")
    assert "dve" not in out
    assert cli("env", "create", "qa", "-p", root)[0] == 0
    assert _run(cli, root, "--env", "qa")[0] == 0


def test_a_yaml_alias_bomb_is_refused_with_its_line(make_project: ProjectFactory,
                                                    cli: Cli) -> None:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    levels += [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]"
               for i in range(8)]
    root = make_project({"andon.yaml": "name: bomb\nparams:\n"
                         + "".join(f"  {line}\n" for line in levels)})
    code, _, err = cli("plan", "-p", root)
    assert code != 0 and "alias expansions" in err and "andon.yaml:" in err


def test_a_huge_yaml_file_is_refused(make_project: ProjectFactory, cli: Cli) -> None:
    root = make_project({"andon.yaml": "name: big\n"})
    with (root / "andon.yaml").open("a") as f:
        f.write("# padding\n" * 1_100_000)
    code, _, err = cli("plan", "-p", root)
    assert code != 0 and "larger than 10 MB" in err
