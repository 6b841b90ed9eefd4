"""An environment can read other files (a sample in dev) through a parameter in a source's
path, without its files ever mixing into another environment's data."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Cli, ProjectFactory

PROJECT = {
    "andon.yaml": """
        name: per_env
        params:
          data_dir: incoming
        environments:
          dev:
            params: {data_dir: sample}
        sources:
          raw_orders:
            path: "{{ data_dir }}/orders/*.csv"
            columns:
              id: {type: integer, required: true}
              amount: double
    """,
    "incoming/orders/2026-11.csv": "id,amount\n1,10\n2,20\n3,30\n",
    "sample/orders/tiny.csv": "id,amount\n9,99\n",
    "pipelines/p/orders.sql": "SELECT id, amount FROM raw_orders",
}


def ids(cli: Cli, root: Path, env: str) -> list[int]:
    code, out, err = cli("query", "SELECT id FROM orders ORDER BY id", "-p", root, "--env", env,
                         "--format", "json")
    assert code == 0, err
    return [r["id"] for r in json.loads(out)]


def test_dev_reads_its_sample_and_prod_its_own_files(make_project: ProjectFactory,
                                                     cli: Cli) -> None:
    root = make_project(PROJECT)
    assert cli("run", "-p", root, "-q")[0] == 0
    assert ids(cli, root, "prod") == [1, 2, 3]
    assert cli("run", "-p", root, "--env", "dev", "-q")[0] == 0
    assert ids(cli, root, "dev") == [9]
    # the sample landed, yet prod's next run neither sees it nor rebuilds anything
    assert cli("run", "-p", root, "-q")[0] == 0
    run = json.loads(cli("runs", "show", "latest", "-p", root, "--format", "json")[1])
    assert {s["action"] for s in run["steps"]} == {"reused"}
    assert ids(cli, root, "prod") == [1, 2, 3]


def test_a_moved_incoming_folder_keeps_the_data_that_is_still_there(
    make_project: ProjectFactory, cli: Cli
) -> None:
    root = make_project(PROJECT)
    assert cli("run", "-p", root, "-q")[0] == 0
    (root / "incoming").rename(root / "arriving")
    yaml = (root / "andon.yaml").read_text().replace("data_dir: incoming", "data_dir: arriving")
    (root / "andon.yaml").write_text(yaml)
    assert cli("run", "-p", root, "-q")[0] == 0
    assert ids(cli, root, "prod") == [1, 2, 3]


def test_a_sql_check_can_be_a_metric_with_a_threshold(make_project: ProjectFactory,
                                                      cli: Cli) -> None:
    files = dict(PROJECT)
    files["checks/share.sql"] = """
        /* ---
        table: orders
        metric: true
        max: 15
        severity: warn
        --- */
        SELECT avg(amount) FROM {{ table }}
    """
    root = make_project(files)
    code, out, err = cli("run", "-p", root, "--format", "json")
    assert code == 0, err
    check = next(c for c in json.loads(out)["checks"] if c["name"] == "share")
    assert check["metric"] == 20.0 and check["status"] == "failed"
    assert check["threshold"] == {"max": 15.0}
