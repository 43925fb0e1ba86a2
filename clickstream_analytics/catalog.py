"""The catalog's tables: read from a Glue catalog, and created in a Spark session's metastore.

:func:`catalog_tables` reads a Glue database's tables (the stack's catalog, on AWS or as the local
stack provisioned it from ``template.yaml``); the DuckDB views (:mod:`.duckdb_lake`) and the
Athena engine use them as they are. For Spark SQL, :func:`sync_metastore` creates each table in
the session's Hive metastore (locally Spark + embedded Derby) with one ``CREATE TABLE``. On AWS,
Athena partition projection makes crawlers and partition maintenance unnecessary; a metastore has
no projection, so partitions are registered from what is in S3:

- Hive-style folders (``events/year=2026/month=3/...``): ``MSCK REPAIR TABLE``;
- plain folders (``rawdata/2026/03/07/14/``): the ``storage.location.template`` of the table
  is matched against the keys, and each folder is added with ``ALTER TABLE ... ADD PARTITION``.

Tables keep their SerDe: Parquet, and ``OpenCSVSerde`` for the aggregated CSV (in Spark's Hive
jars, with opencsv), with the catalog's SerDe parameters as they are. The OpenX JSON SerDe the
catalog names for JSON lines (Athena's, tolerant of malformed lines) is not on Maven Central, so
those tables use the HCatalog ``JsonSerDe`` here (added from Maven Central by the local Spark
session): same columns and locations, but a malformed line fails the query instead of reading as
nulls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from clickstream_glue.hive import add_partitions_sql, partition_values, string_literal

PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
OPENX_JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"
HCATALOG_JSON_SERDE = "org.apache.hive.hcatalog.data.JsonSerDe"
OPEN_CSV_SERDE = "org.apache.hadoop.hive.serde2.OpenCSVSerde"


@dataclass(frozen=True)
class CatalogTable:
    """The parts of a Glue ``TableInput`` the local metastore needs."""

    name: str
    columns: tuple[tuple[str, str], ...]
    partition_keys: tuple[tuple[str, str], ...]
    location: str
    serde: str
    serde_parameters: dict[str, str]
    location_template: str | None

    @classmethod
    def from_table_input(cls, table: dict[str, Any]) -> CatalogTable:
        """From a Glue ``TableInput`` (template) or ``Table`` (GetTable) document."""
        descriptor = table["StorageDescriptor"]
        serde = descriptor.get("SerdeInfo", {})
        return cls(
            name=table["Name"],
            columns=tuple((c["Name"], c["Type"]) for c in descriptor["Columns"]),
            partition_keys=tuple((c["Name"], c["Type"]) for c in table.get("PartitionKeys", [])),
            location=descriptor["Location"],
            serde=serde.get("SerializationLibrary", ""),
            serde_parameters=dict(serde.get("Parameters", {})),
            location_template=table.get("Parameters", {}).get("storage.location.template"),
        )

    @property
    def hive_style(self) -> bool:
        """True when partition folders are named ``key=value``."""
        return self.location_template is None or all(
            f"{name}=${{{name}}}" in self.location_template for name, _ in self.partition_keys
        )


def create_table_sql(table: CatalogTable, database: str) -> str:
    """The HiveQL DDL creating ``table`` in ``database``."""
    columns = ", ".join(f"`{name}` {kind}" for name, kind in table.columns)
    partitions = ", ".join(f"`{name}` {kind}" for name, kind in table.partition_keys)
    partitioned = f" PARTITIONED BY ({partitions})" if partitions else ""
    if table.serde == PARQUET_SERDE:
        storage = "STORED AS PARQUET"
    elif table.serde == OPENX_JSON_SERDE:
        storage = f"ROW FORMAT SERDE '{HCATALOG_JSON_SERDE}' STORED AS TEXTFILE"
    else:
        properties = ", ".join(
            f"{string_literal(k)} = {string_literal(v)}"
            for k, v in sorted(table.serde_parameters.items())
        )
        with_properties = f" WITH SERDEPROPERTIES ({properties})" if properties else ""
        storage = f"ROW FORMAT SERDE '{table.serde}'{with_properties} STORED AS TEXTFILE"
    return (
        f"CREATE EXTERNAL TABLE `{database}`.`{table.name}` ({columns}){partitioned} {storage}"
        f" LOCATION '{table.location}'"
    )


def catalog_tables(glue: Any, database: str) -> list[CatalogTable]:
    """Every table of ``database`` in a Glue catalog, by name."""
    tables: list[CatalogTable] = []
    for page in glue.get_paginator("get_tables").paginate(DatabaseName=database):
        tables.extend(CatalogTable.from_table_input(table) for table in page["TableList"])
    return sorted(tables, key=lambda table: table.name)


def sync_metastore(spark: Any, glue: Any, s3: Any, database: str) -> dict[str, int]:
    """(Re)create the catalog's tables in the Spark session's Hive metastore.

    Returns the number of partitions registered per table. Tables are external: dropping and
    recreating them never touches the data.
    """
    spark.sql(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    registered: dict[str, int] = {}
    for table in catalog_tables(glue, database):
        spark.sql(f"DROP TABLE IF EXISTS `{database}`.`{table.name}`")
        spark.sql(create_table_sql(table, database))
        registered[table.name] = 0
        if not table.partition_keys:
            continue
        if table.hive_style:
            spark.sql(f"MSCK REPAIR TABLE `{database}`.`{table.name}`")
            registered[table.name] = len(
                spark.sql(f"SHOW PARTITIONS `{database}`.`{table.name}`").collect()
            )
            continue
        assert table.location_template is not None
        partitions = partition_values(table.location_template, _object_uris(s3, table.location))
        names = [name for name, _ in table.partition_keys]
        for start in range(0, len(partitions), 100):
            chunk = partitions[start : start + 100]
            spark.sql(add_partitions_sql(database, table.name, names, chunk))
        registered[table.name] = len(partitions)
    return registered


def split_location(location: str) -> tuple[str, str]:
    """``s3://bucket/prefix/`` (or ``s3a://``) as (bucket, prefix)."""
    match = re.fullmatch(r"s3a?://([^/]+)/?(.*)", location)
    if match is None:
        raise ValueError(f"not an S3 location: {location}")
    bucket, prefix = match.groups()
    return bucket, prefix


def _object_uris(s3: Any, location: str) -> list[str]:
    bucket, prefix = split_location(location)
    uris: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        uris.extend(f"s3://{bucket}/{item['Key']}" for item in page.get("Contents", []))
    return uris
