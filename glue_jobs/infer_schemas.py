"""Glue job (task 1.2): infer the raw and aggregated schemas with Spark and register the tables.

It samples the newest objects of ``rawdata/`` (JSON lines) and ``aggregated/`` (CSV without a
header), infers both schemas with PySpark, renames positional columns (``_c0``/``col0`` ...) to
the seed's names and the four folder levels (``partition_0..3``) to year/month/day/hour, narrows
``bigint`` to ``int`` where the sampled values fit, and creates the tables through Spark SQL:
in the Glue Data Catalog on AWS (``--enable-glue-datacatalog``), in the Hive metastore locally.
The CSV table reads through ``OpenCSVSerde`` as the template's ``aggregated`` table does, so its
columns are declared ``string`` (the inferred types are kept in the column comments and the
report). It prints the DDL. The partitions found in S3 are registered too (Athena also projects
them).

Arguments: ``--source_bucket``, ``--database``; optional ``--raw_prefix`` (``rawdata/``),
``--aggregated_prefix`` (``aggregated/``), ``--sample_objects`` (20), ``--raw_table``
(``inferred_rawdata``) and ``--aggregated_table`` (``inferred_aggregated``). The template's own
``rawdata`` and ``aggregated`` tables stay as declared; the inferred ones sit beside them, so the
two can be compared.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from clickstream.core.sessions import CSV_QUOTE
from clickstream_glue.args import resolve_options
from clickstream_glue.hive import add_partitions_sql, partition_values
from clickstream_glue.inference import (
    CSV_SERDE,
    CSV_SERDE_PROPERTIES,
    HOUR_PARTITIONS,
    JSON_SERDE,
    InferredTable,
    csv_width,
    folder_partitions,
    hive_type,
    task_name,
)
from clickstream_glue.runtime import start_job
from clickstream_glue.store import ObjectStore

JOB_NAME = "infer_schemas"
REQUIRED = ("source_bucket", "database")
DEFAULTS = {
    "curated_bucket": "",
    "raw_prefix": "rawdata/",
    "aggregated_prefix": "aggregated/",
    "sample_objects": "20",
    "raw_table": "inferred_rawdata",
    "aggregated_table": "inferred_aggregated",
    "JOB_NAME": JOB_NAME,
    "JOB_RUN_ID": "",
}


def infer_table(
    spark: SparkSession,
    store: ObjectStore,
    prefix: str,
    name: str,
    serde: str,
    sample_objects: int,
) -> tuple[InferredTable, list[str]]:
    """Infer one table from the newest objects under ``prefix``; also every object's URI."""
    objects = [obj for obj in store.list(prefix) if obj.size > 0]
    if not objects:
        raise RuntimeError(f"nothing to infer a schema from under {store.uri(prefix)}")
    sample = [store.uri(obj.key) for obj in objects[-sample_objects:]]
    if serde == JSON_SERDE:
        frame = spark.read.json(sample).drop("_corrupt_record")
    else:
        frame = (
            spark.read.option("inferSchema", "true")
            .option("sep", CSV_SERDE_PROPERTIES["separatorChar"])
            .option("quote", CSV_QUOTE)
            .option("escape", CSV_QUOTE)
            .csv(regular_csv_lines(spark, sample))
        )
    renamed = frame.toDF(*(task_name(column) for column in frame.columns))
    columns = tuple(
        (column, hive_type(kind, _range(renamed, column, kind))) for column, kind in renamed.dtypes
    )
    levels = folder_partitions(prefix, [obj.key for obj in objects])
    crawler_names = [f"partition_{level}" for level in range(levels)]
    partitions = tuple(task_name(partition) for partition in crawler_names)
    if partitions != HOUR_PARTITIONS[: len(partitions)]:
        raise RuntimeError(f"{prefix} has {levels} folder levels, expected YYYY/MM/DD/HH")
    table = InferredTable(name, columns, partitions, serde, store.uri(prefix))
    return table, [store.uri(obj.key) for obj in objects]


def regular_csv_lines(spark: SparkSession, uris: list[str]) -> Any:
    """The sample's CSV lines with the most common number of fields (an RDD of strings).

    A malformed row (say, three fields, or a line the sessionizer cannot write) would otherwise
    turn every column it touches into ``string``; the jobs quarantine such rows, so inference
    leaves them out too.
    """
    lines = spark.read.text(uris).rdd.map(lambda row: row[0])
    widths = lines.map(csv_width).countByValue()
    common = max(widths, key=lambda width: (width >= 0, widths[width], width))
    return lines.filter(lambda line: csv_width(line) == common)


def _range(frame: DataFrame, column: str, kind: str) -> tuple[int, int] | None:
    if kind != "bigint":
        return None
    low, high = frame.agg(F.min(column), F.max(column)).first() or (None, None)
    return None if low is None else (int(low), int(high))


def register(spark: SparkSession, database: str, table: InferredTable, uris: list[str]) -> str:
    """Replace the table in the session's catalog, add its partitions; returns the DDL run."""
    ddl = table.ddl(database)
    spark.sql(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    spark.sql(f"DROP TABLE IF EXISTS `{database}`.`{table.name}`")
    spark.sql(ddl)
    partitions = partition_values(table.location_template, uris)
    for start in range(0, len(partitions), 100):
        chunk = partitions[start : start + 100]
        spark.sql(add_partitions_sql(database, table.name, table.partitions, chunk))
    return ddl


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Infer, register and print both tables' DDL; returns what was registered."""
    options = resolve_options(sys.argv if argv is None else argv, REQUIRED, DEFAULTS)
    job = start_job(
        JOB_NAME,
        {**options, "curated_bucket": options["curated_bucket"] or options["source_bucket"]},
    )
    sample = int(options["sample_objects"])
    report: dict[str, Any] = {"job": JOB_NAME, "tables": {}}
    layers = [
        (options["raw_prefix"], options["raw_table"], JSON_SERDE),
        (options["aggregated_prefix"], options["aggregated_table"], CSV_SERDE),
    ]
    for prefix, name, serde in layers:
        table, uris = infer_table(job.spark, job.source, prefix, name, serde, sample)
        ddl = register(job.spark, options["database"], table, uris)
        print(f"-- {name}: inferred from {min(sample, len(uris))} of {len(uris)} objects\n{ddl};\n")
        report["tables"][name] = {
            "columns": dict(table.declared_columns),
            "inferred_types": dict(table.columns),
            "partitions": list(table.partitions),
        }
    print(json.dumps(report))
    job.commit()
    return report


if __name__ == "__main__":
    main()
