"""Pure parts of schema inference: crawler-style names to the task's names, types, and DDL."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from clickstream.core.sessions import MINUTE_SESSION_COLUMNS

HOUR_PARTITIONS: tuple[str, ...] = ("year", "month", "day", "hour")
"""Names of the four folder levels ``YYYY/MM/DD/HH`` (a crawler calls them partition_0..3)."""

JSON_SERDE = "org.apache.hive.hcatalog.data.JsonSerDe"
CSV_SERDE = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
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
    def location_template(self) -> str:
        """``<location>${year}/${month}/${day}/${hour}/``."""
        return self.location + "".join(f"${{{name}}}/" for name in self.partitions)

    def ddl(self, database: str, serde_properties: Mapping[str, str] | None = None) -> str:
        """CREATE EXTERNAL TABLE with Athena partition projection over the hour folders."""
        columns = ",\n  ".join(f"`{name}` {kind}" for name, kind in self.columns)
        partitions = ", ".join(f"`{name}` string" for name in self.partitions)
        properties = dict(serde_properties or {})
        serde_clause = f"ROW FORMAT SERDE '{self.serde}'"
        if properties:
            pairs = ", ".join(f"'{k}' = '{v}'" for k, v in sorted(properties.items()))
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
