"""Spark DataFrame transforms shared by the jobs: read lines, parse, deduplicate, partition."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from clickstream.core.events import InvalidEvent
from clickstream_glue.records import LineParser

PARTITION_COLUMNS: tuple[str, ...] = ("year", "month", "day", "hour")
REASON = "_reason"
QUARANTINE_COLUMNS: tuple[str, ...] = ("source", "line", "reason")


def read_lines(spark: SparkSession, uris: Sequence[str]) -> DataFrame:
    """Every line of the objects, with the object it came from (``source``)."""
    return spark.read.text(list(uris)).select(
        F.input_file_name().alias("source"), F.col("value").alias("line")
    )


def parse_lines(lines: DataFrame, parser: LineParser, schema: StructType) -> DataFrame:
    """``lines`` plus the parsed columns of ``schema`` and ``_reason`` (null when the line parsed).

    Timestamps come back from the parser as epoch microseconds: declare them ``long`` in
    ``schema`` and convert with :func:`micros_to_timestamp`.
    """
    result_type = StructType([*schema.fields, StructField(REASON, StringType())])
    names = result_type.fieldNames()
    width = len(schema.fields)

    def parse_one(line: str | None) -> tuple[object, ...]:
        try:
            return (*parser(line if line is not None else ""), None)
        except InvalidEvent as error:
            return (*([None] * width), error.reason)

    @F.pandas_udf(result_type)  # type: ignore[call-overload]
    def parse(series: pd.Series) -> pd.DataFrame:
        return pd.DataFrame([parse_one(line) for line in series], columns=names, dtype=object)

    parsed = lines.withColumn("_parsed", parse(F.col("line")))
    return parsed.select(
        "source", "line", *(F.col(f"_parsed.{name}").alias(name) for name in names)
    )


def micros_to_timestamp(column: str) -> Column:
    """A long of epoch microseconds as a real ``timestamp``."""
    return F.expr(f"timestamp_micros({column})").alias(column)


def quarantined(parsed: DataFrame) -> DataFrame:
    """The lines that did not parse, with their reasons."""
    return parsed.where(F.col(REASON).isNotNull()).select(
        "source", "line", F.col(REASON).alias("reason")
    )


def accepted(parsed: DataFrame, columns: Sequence[str]) -> DataFrame:
    """The lines that parsed, as the given columns plus ``source`` and ``line``."""
    return parsed.where(F.col(REASON).isNull()).select(*columns, "source", "line")


def keep_first(rows: DataFrame, key: str, order: Sequence[Column]) -> DataFrame:
    """One row per ``key``: the first by ``order`` (which must break every tie)."""
    window = Window.partitionBy(key).orderBy(*order)
    ranked = rows.withColumn("_rank", F.row_number().over(window))
    return ranked.where(F.col("_rank") == 1).drop("_rank")


def with_hour_partitions(rows: DataFrame, timestamp_column: str) -> DataFrame:
    """Add ``year``, ``month``, ``day`` and ``hour`` (ints, UTC) of a timestamp column."""
    moment = F.col(timestamp_column)
    return (
        rows.withColumn("year", F.year(moment))
        .withColumn("month", F.month(moment))
        .withColumn("day", F.dayofmonth(moment))
        .withColumn("hour", F.hour(moment))
    )
