"""``clickstream --stack NAME query``: any SQL over the catalog's tables on DuckDB, and its formats.

The deployed stack is the real :class:`DeployedStack` on a fake session: CloudFormation outputs as
the local stack registers them, the template's Glue tables, and S3 objects in memory.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from clickstream_analytics.deployed import DeployedStack
from clickstream_analytics.queries import QueryResult
from clickstream_cli import common
from clickstream_cli.main import main
from clickstream_local.cfn import Template
from clickstream_local.provision import Provisioner

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = Template.load(ROOT / "template.yaml", stack_name="shop")
RAW = TEMPLATE.physical_id("RawBucket")
EVENTS = [
    {
        "event_id": f"00000000-0000-4000-8000-{n:012d}",
        "custid": n,
        "trafficfrom": "google" if n % 2 else "bing",
        "url": "beer_cart",
        "device": "browser" if n < 3 else "app_mobile",
        "touchproduct": n,
        "trans_timestamp": f"2026-03-07T14:0{n}:00.000001",
    }
    for n in range(1, 5)
]
OBJECTS = {
    (RAW, "rawdata/2026/03/07/14/shop-raw-1-2026-03-07-14-00-00-a"): (
        "\n".join(json.dumps(event) for event in EVENTS[:3]) + '\n{"custid": 1, broken\n'
    ).encode(),
    (RAW, "rawdata/2026/03/07/15/shop-raw-1-2026-03-07-15-00-00-b"): (
        json.dumps(EVENTS[3]) + "\n"
    ).encode(),
    (RAW, "aggregated/2026/03/07/14/shop-aggregated-1-2026-03-07-14-05-00-c"): (
        b"1_b_1772892000,1,browser,2026-03-07 14:00:00,3,beer_home,beer_cart,00:00,00:40,40\n"
    ),
}


class FakePages:
    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages = pages

    def paginate(self, **arguments: Any) -> list[dict[str, Any]]:
        return self.pages


class FakeAws:
    """CloudFormation, Glue and S3 of one deployed stack, in memory."""

    def __init__(self) -> None:
        outputs = Provisioner(TEMPLATE, "http://unused").stack_outputs()
        outputs.pop("SearchDomainEndpoint")
        self.outputs = [{"OutputKey": key, "OutputValue": value} for key, value in outputs.items()]
        self.tables = [
            resource.properties["TableInput"] for resource in TEMPLATE.resources("AWS::Glue::Table")
        ]

    # cloudformation
    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        return {"Stacks": [{"StackName": StackName, "Outputs": self.outputs}]}

    # glue and s3
    def get_paginator(self, name: str, /) -> FakePages:
        if name == "get_tables":
            return FakePages([{"TableList": self.tables}])
        return ListObjects()

    def download_file(self, bucket: str, key: str, path: str) -> None:
        Path(path).write_bytes(OBJECTS[(bucket, key)])


class ListObjects(FakePages):
    def __init__(self) -> None:
        super().__init__([])

    def paginate(self, **arguments: Any) -> list[dict[str, Any]]:
        contents = [
            {"Key": key, "Size": len(body)}
            for (bucket, key), body in sorted(OBJECTS.items())
            if bucket == arguments["Bucket"] and key.startswith(arguments["Prefix"])
        ]
        return [{"Contents": contents}]


class FakeSession:
    region_name = "eu-west-1"

    def client(self, service: str, **arguments: Any) -> FakeAws:
        return FakeAws()

    def get_credentials(self) -> None:
        return None


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``--stack shop`` reads the fake AWS; the state folder is empty."""
    monkeypatch.setenv("CLICKSTREAM_HOME", str(tmp_path))

    def connect(name: str, sql_path: Path, **_: Any) -> DeployedStack:
        return DeployedStack(name, FakeSession(), sql_path)

    monkeypatch.setattr(common.DeployedStack, "connect", staticmethod(connect))
    return tmp_path


def query(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str, str]:
    code = main(["--stack", "shop", "query", *arguments])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_sql_over_the_raw_json_table_with_the_catalogs_columns(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # WHEN an ad-hoc query groups the raw layer by device and hour partition, as JSON
    code, out, err = query(
        capsys,
        "--sql",
        "SELECT device, hour, COUNT(*) AS events, SUM(touchproduct) AS products FROM rawdata"
        " WHERE event_id IS NOT NULL GROUP BY device, hour ORDER BY device, hour",
        "--format",
        "json",
    )
    # THEN the rows use the catalog's names; the malformed line read as nulls, like Athena's SerDe
    assert code == 0, err
    assert json.loads(out) == [
        {"device": "app_mobile", "hour": "14", "events": 1, "products": 3},
        {"device": "app_mobile", "hour": "15", "events": 1, "products": 4},
        {"device": "browser", "hour": "14", "events": 2, "products": 3},
    ]
    assert err.strip() == "3 rows on duckdb"
    # ... and the raw objects were read through the S3 API into the deployed stack's cache
    cache = home / "stacks" / "eu-west-1" / "shop" / "duckdb" / RAW / "rawdata"
    assert len([path for path in cache.rglob("*") if path.is_file()]) == 2


def test_sql_over_the_aggregated_csv_table_as_csv(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # WHEN task 1.1's table is queried by its column names, as CSV
    code, out, _ = query(
        capsys,
        "--sql",
        "SELECT sessionid, userid, aggreg_time, events, totaltime_sec FROM aggregated",
        "--format",
        "csv",
    )
    # THEN the CSV has a header and the values as the table's string columns hold them
    assert code == 0
    assert list(csv.reader(io.StringIO(out))) == [
        ["sessionid", "userid", "aggreg_time", "events", "totaltime_sec"],
        ["1_b_1772892000", "1", "2026-03-07 14:00:00", "3", "40"],
    ]


def test_a_named_query_on_a_deployed_stack_is_saved_in_its_own_folder(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # WHEN a sql/ file runs on an empty curated layer
    code, out, _ = query(capsys, "row_counts")
    # THEN the Markdown sample is printed and the result saved under the stack's folder
    assert code == 0
    assert out.startswith("| ")
    results = home / "stacks" / "eu-west-1" / "shop" / "results"
    saved = (results / "row_counts.csv").read_text().splitlines()
    assert out.splitlines()[0] == "| " + " | ".join(saved[0].split(",")) + " |"


def test_engines_are_refused_where_they_cannot_run(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN no local stack: Spark on a deployed stack and Athena on the local one are refused
    code, _, err = query(capsys, "--sql", "SELECT 1", "--engine", "spark")
    assert code == 1 and "Spark SQL runs on the local stack only" in err
    assert main(["query", "--sql", "SELECT 1", "--engine", "athena"]) == 1
    assert "Athena runs on a deployed stack" in capsys.readouterr().err
    # AND --stack goes with the read commands only
    with pytest.raises(SystemExit):
        main(["--stack", "shop", "generate", "--count", "1"])


def test_every_format_renders_the_same_rows() -> None:
    result = QueryResult.of(("device", "share"), [("browser", 0.5), ("app, mobile", None)])
    assert result.render("table") == (
        "| device | share |\n|---|---|\n| browser | 0.5 |\n| app, mobile |  |\n"
    )
    assert result.render("csv") == 'device,share\nbrowser,0.5\n"app, mobile",\n'
    assert json.loads(result.render("json")) == [
        {"device": "browser", "share": 0.5},
        {"device": "app, mobile", "share": None},
    ]
    with pytest.raises(ValueError, match="unknown format"):
        result.render("xml")
