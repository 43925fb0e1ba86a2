"""HiveQL helpers shared by the schema-inference job and the local metastore sync."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

Partition = tuple[dict[str, str], str]
"""Partition values by name, and the folder URI holding the partition."""


def partition_values(template: str, uris: Iterable[str]) -> list[Partition]:
    """The partitions of the objects ``uris`` that match a ``storage.location.template``.

    E.g. ``s3://bucket/rawdata/${year}/${month}/${day}/${hour}/`` and
    ``s3://bucket/rawdata/2026/03/07/14/x.json`` give ``({"year": "2026", ...}, "s3://.../14/")``.
    """
    pattern = ""
    for index, piece in enumerate(re.split(r"\$\{(\w+)\}", template)):
        pattern += re.escape(piece) if index % 2 == 0 else f"(?P<{piece}>[^/]+)"
    matcher = re.compile(pattern)
    found: dict[str, dict[str, str]] = {}
    for uri in uris:
        match = matcher.match(uri)
        if match:
            found[uri[: match.end()]] = match.groupdict()
    return [(values, folder) for folder, values in sorted(found.items())]


def string_literal(text: str) -> str:
    """``text`` as a single-quoted HiveQL string literal (Spark SQL, Hive and Athena DDL).

    Quotes and backslashes are escaped, and control characters written as ``\\uXXXX``, so a
    SerDe parameter such as U+0001 survives the statement.
    """
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    escaped = re.sub(r"[\x00-\x1f\x7f]", lambda found: f"\\u{ord(found.group()):04x}", escaped)
    return f"'{escaped}'"


def add_partitions_sql(
    database: str, table: str, names: Sequence[str], partitions: Sequence[Partition]
) -> str:
    """One ``ALTER TABLE ... ADD IF NOT EXISTS`` registering every partition with its folder."""
    specs = " ".join(
        "PARTITION ("
        + ", ".join(f"`{name}` = '{values[name]}'" for name in names)
        + f") LOCATION '{folder}'"
        for values, folder in partitions
    )
    return f"ALTER TABLE `{database}`.`{table}` ADD IF NOT EXISTS {specs}"
