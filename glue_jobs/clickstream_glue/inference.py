"""Pure parts of schema inference: crawler-style names to the task's names, types, and DDL.

The aggregated CSV is read through Hive's ``OpenCSVSerde`` with :data:`CSV_SERDE_PROPERTIES`, the
SerDe the template's ``aggregated`` table names: double quotes enclose fields and a doubled quote
is a quote, as the sessionizer writes them (:func:`clickstream.core.sessions.csv_line`). Its escape
character is U+0001, a control character no field can hold: opencsv's default, the backslash,
would drop every backslash of the data. The SerDe reads every column as ``string`` (in Hive and
Spark; Athena converts a few types, but not ``YYYY-MM-DD HH:MM:SS`` timestamps), so a CSV table
declares its columns ``string``, and Athena, Spark and DuckDB read the same values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from clickstream.core.events import InvalidEvent
from clickstream.core.sessions import (
    CSV_QUOTE,
    CSV_SEPARATOR,
    MINUTE_SESSION_COLUMNS,
    parse_csv_line,
)
from clickstream_glue.hive import string_literal

HOUR_PARTITIONS: tuple[str, ...] = ("year", "month", "day", "hour")
"""Names of the four folder levels ``YYYY/MM/DD/HH`` (a crawler calls them partition_0..3)."""

JSON_SERDE = "org.apache.hive.hcatalog.data.JsonSerDe"
CSV_SERDE = "org.apache.hadoop.hive.serde2.OpenCSVSerde"
CSV_SERDE_PROPERTIES: Mapping[str, str] = {
    "separatorChar": CSV_SEPARATOR,
    "quoteChar": CSV_QUOTE,
    "escapeChar": "\u0001",
}
"""The aggregated table's SerDe parameters, as ``template.yaml`` declares them."""
INT32 = (-(2**31), 2**31 - 1)

_POSITIONAL = re.compile(r"_?c(?:ol)?(\d+)")
_PARTITION = re.compile(r"partition_(\d+)")


def task_name(name: str, positional_names: Sequence[str] = MINUTE_SESSION_COLUMNS) -> str:
    """``col3``/``_c3`` → the 4th task column, ``partition_0..3`` → year..hour, else unchanged."""
    positional = _POSITIONAL.fullmatch(name)
    if positional and int(positional.group(1)) < len(positional_names):
        return positional_names[int(positional.group(1))]
    partition = _PARTITION.fullmatch(name)
    if partition and int(partition.group(1)) < len(HOUR_PARTITIONS):
        return HOUR_PARTITIONS[int(partition.group(1))]
    return name


def hive_type(spark_type: str, value_range: tuple[int, int] | None = None) -> str:
    """The Hive type of an inferred Spark type; ``bigint`` narrows to ``int`` when it fits."""
    if spark_type == "bigint" and value_range is not None:
        low, high = value_range
        if INT32[0] <= low and high <= INT32[1]:
            return "int"
    return spark_type


def csv_width(line: str) -> int:
    """The number of fields of a CSV line, or -1 for a line the sessionizer cannot write."""
    try:
        return len(parse_csv_line(line))
    except InvalidEvent:
        return -1


def folder_partitions(prefix: str, keys: Sequence[str]) -> int:
    """How many folder levels lie between ``prefix`` and the objects (the same for all keys)."""
    depths = {key[len(prefix) :].count("/") for key in keys if key.startswith(prefix)}
    if len(depths) != 1:
        raise ValueError(f"objects under {prefix} are at different depths: {sorted(depths)}")
    return depths.pop()


@dataclass(frozen=True)
class InferredTable:
    """A table as inferred: Hive columns, partition names, format and location."""

    name: str
    columns: tuple[tuple[str, str], ...]
    partitions: tuple[str, ...]
    serde: str
    location: str

    @property
    def declared_columns(self) -> tuple[tuple[str, str], ...]:
        """The columns as the table declares them: all ``string`` for :data:`CSV_SERDE`."""
        if self.serde == CSV_SERDE:
            return tuple((name, "string") for name, _ in self.columns)
        return self.columns

    @property
    def serde_properties(self) -> dict[str, str]:
        """The SerDe's parameters: :data:`CSV_SERDE_PROPERTIES` for CSV, none for JSON."""
        return dict(CSV_SERDE_PROPERTIES) if self.serde == CSV_SERDE else {}

    @property
    def location_template(self) -> str:
        """``<location>${year}/${month}/${day}/${hour}/``."""
        return self.location + "".join(f"${{{name}}}/" for name in self.partitions)

    def ddl(self, database: str) -> str:
        """CREATE EXTERNAL TABLE with Athena partition projection over the hour folders.

        A column declared ``string`` where Spark inferred another type says so in its comment.
        """
        inferred = dict(self.columns)
        columns = ",\n  ".join(
            f"`{name}` {kind}"
            + (f" COMMENT 'inferred {inferred[name]}'" if inferred[name] != kind else "")
            for name, kind in self.declared_columns
        )
        partitions = ", ".join(f"`{name}` string" for name in self.partitions)
        properties = self.serde_properties
        serde_clause = f"ROW FORMAT SERDE '{self.serde}'"
        if properties:
            pairs = ", ".join(
                f"{string_literal(k)} = {string_literal(v)}" for k, v in sorted(properties.items())
            )
            serde_clause += f" WITH SERDEPROPERTIES ({pairs})"
        table_properties = {
            "classification": "json" if self.serde == JSON_SERDE else "csv",
            **_projection(self.partitions),
            "storage.location.template": self.location_template,
        }
        tblproperties = ",\n  ".join(f"'{k}' = '{v}'" for k, v in table_properties.items())
        partitioned = f"\nPARTITIONED BY ({partitions})" if partitions else ""
        return (
            f"CREATE EXTERNAL TABLE `{database}`.`{self.name}` (\n  {columns}\n)"
            f"{partitioned}\n{serde_clause}\nSTORED AS TEXTFILE\n"
            f"LOCATION '{self.location}'\nTBLPROPERTIES (\n  {tblproperties}\n)"
        )


_RANGES = {"year": "2020,2099", "month": "1,12", "day": "1,31", "hour": "0,23"}


def _projection(partitions: Sequence[str]) -> dict[str, str]:
    if not partitions:
        return {}
    properties = {"projection.enabled": "true"}
    for name in partitions:
        properties[f"projection.{name}.type"] = "integer"
        properties[f"projection.{name}.range"] = _RANGES.get(name, "0,9999")
        if name != "year":
            properties[f"projection.{name}.digits"] = "2"
    return properties
