"""DuckDB over the lake: each catalog table's objects read through the S3 API into a cache folder.

Every table becomes a view with the catalog's name and columns:

- Parquet tables (the curated layer): ``read_parquet`` with their Hive-style partition folders;
- JSON-lines tables (``rawdata``, ``sessions``): ``read_json``; a malformed line reads as nulls,
  a value of the wrong type as null, as Athena's OpenX SerDe (``ignore.malformed.json``) does;
- CSV tables (``aggregated``, task 1.1's ten columns): ``read_csv`` without a header, reading
  what the table's ``OpenCSVSerde`` reads: fields in its quote character, a doubled quote as a
  quote, every other character (backslashes too) as it is.

Partition columns of plain folders (``rawdata/2026/03/07/14/``) come from the object's path, by
the table's ``storage.location.template``; of Hive-style folders, from ``key=value``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from clickstream_analytics.catalog import (
    OPEN_CSV_SERDE,
    OPENX_JSON_SERDE,
    PARQUET_SERDE,
    CatalogTable,
    split_location,
)

JSON_SERDES = (OPENX_JSON_SERDE, "org.apache.hive.hcatalog.data.JsonSerDe")
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


def curated_parquet_tables(tables: Sequence[CatalogTable]) -> list[CatalogTable]:
    """The catalog's Parquet tables: the curated layer."""
    return [table for table in tables if table.serde == PARQUET_SERDE]


def referenced_tables(text: str, tables: Iterable[CatalogTable]) -> list[CatalogTable]:
    """The tables whose name appears as a word in ``text`` (the ones a statement may read)."""
    return [table for table in tables if re.search(rf"\b{re.escape(table.name)}\b", text, re.I)]


def download_tables(s3: Any, tables: Sequence[CatalogTable], folder: Path) -> dict[str, Path]:
    """Mirror each table's S3 folder under ``folder`` (stale files removed); local path by name.

    Parquet tables mirror their ``.parquet`` objects, other tables every object. An object already
    in the cache with the same size is not read again.
    """
    local: dict[str, Path] = {}
    for table in tables:
        bucket, prefix = split_location(table.location)
        target = folder / bucket / prefix
        suffix = ".parquet" if table.serde == PARQUET_SERDE else ""
        wanted: set[Path] = set()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                if key.endswith("/") or not key.endswith(suffix):
                    continue
                path = folder / bucket / key
                wanted.add(path)
                if not path.exists() or path.stat().st_size != item["Size"]:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    s3.download_file(bucket, key, str(path))
        for stale in _files(target):
            if stale not in wanted:
                stale.unlink()
        local[table.name] = target
    return local


def duckdb_connection(tables: Sequence[CatalogTable], local: dict[str, Path]) -> Any:
    """An in-memory DuckDB with one view per table over its mirrored files."""
    import duckdb

    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    for table in tables:
        connection.execute(f'CREATE VIEW "{table.name}" AS {_view_sql(table, local[table.name])}')
    return connection


def _view_sql(table: CatalogTable, folder: Path) -> str:
    """The SELECT a table's view runs over its files in ``folder``."""
    if not _files(folder):
        columns = ", ".join(
            f'CAST(NULL AS {_duckdb_type(kind)}) AS "{name}"'
            for name, kind in (*table.columns, *table.partition_keys)
        )
        return f"SELECT {columns} WHERE false"
    if table.serde == PARQUET_SERDE:
        types = ", ".join(f"'{name}': {_duckdb_type(kind)}" for name, kind in table.partition_keys)
        return (
            f"SELECT * FROM read_parquet('{folder / '**' / '*.parquet'}',"
            f" hive_partitioning = true, hive_types = {{{types}}})"
        )
    columns = ", ".join(f"'{name}': '{_duckdb_type(kind)}'" for name, kind in table.columns)
    files = folder / "**" / "*"
    if table.serde in JSON_SERDES:
        reader = (
            f"read_json('{files}', format = 'newline_delimited', columns = {{{columns}}},"
            " ignore_errors = true, filename = true)"
        )
    elif table.serde == OPEN_CSV_SERDE:
        reader = _open_csv_reader(table, str(files), columns)
    else:
        delimiter = table.serde_parameters.get("field.delim", ",")
        reader = (
            f"read_csv('{files}', header = false, delim = '{delimiter}', columns = {{{columns}}},"
            " ignore_errors = true, filename = true)"
        )
    selected = [f'"{name}"' for name, _ in table.columns]
    selected += _partition_columns(table)
    return f"SELECT {', '.join(selected)} FROM {reader}"


def _open_csv_reader(table: CatalogTable, files: str, columns: str) -> str:
    """``read_csv`` reading the values ``OpenCSVSerde`` reads with the table's parameters.

    DuckDB's escape is the quote character itself (RFC 4180's doubled quote, which opencsv reads
    too). OpenCSVSerde's own escape character must be one no field holds (a control character):
    a printable one would make opencsv drop or keep characters that DuckDB reads otherwise.
    """
    parameters = table.serde_parameters
    separator = parameters.get("separatorChar", ",")[:1]
    quote = parameters.get("quoteChar", '"')[:1]
    escape = parameters.get("escapeChar", "\\")[:1]
    if not _CONTROL_CHARACTER.fullmatch(escape):
        raise ValueError(
            f"table {table.name}: OpenCSVSerde's escape character {escape!r} can occur in the"
            " data, and DuckDB cannot read it as opencsv does; declare a control character"
        )
    return (
        f"read_csv('{files}', header = false, delim = {_literal(separator)},"
        f" quote = {_literal(quote)}, escape = {_literal(quote)}, columns = {{{columns}}},"
        " auto_detect = false, ignore_errors = true, filename = true)"
    )


def _literal(text: str) -> str:
    """``text`` as a DuckDB string literal."""
    return "'" + text.replace("'", "''") + "'"


def _partition_columns(table: CatalogTable) -> list[str]:
    """Expressions of the partition columns, from each row's ``filename``."""
    if not table.partition_keys:
        return []
    if table.location_template is None or table.hive_style:
        return [
            f"CAST(regexp_extract(filename, '/{name}=([^/]+)/', 1) AS {_duckdb_type(kind)})"
            f' AS "{name}"'
            for name, kind in table.partition_keys
        ]
    _, prefix = split_location(table.location)
    relative = table.location_template.removeprefix(table.location.rstrip("/") + "/")
    names = re.findall(r"\$\{(\w+)\}", relative)
    pattern = re.escape(f"/{prefix}".rstrip("/") + "/") + re.sub(
        r"\\\$\\\{\w+\\\}", "([^/]+)", re.escape(relative)
    )
    pattern += "[^/]*$"
    return [
        f"CAST(regexp_extract(filename, '{pattern}', {names.index(name) + 1})"
        f' AS {_duckdb_type(kind)}) AS "{name}"'
        for name, kind in table.partition_keys
    ]


def _files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()] if folder.exists() else []


def _duckdb_type(hive_type: str) -> str:
    return {"int": "INTEGER", "string": "VARCHAR", "bigint": "BIGINT"}.get(
        hive_type, hive_type.upper()
    )
