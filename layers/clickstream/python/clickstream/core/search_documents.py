"""Search documents for clickstream events: index template, daily index names, bulk actions.

Pure functions only: no client, no I/O. Each event becomes one document whose ``_id`` is its
``event_id`` and whose index is the day of its event time (UTC), written with the ``create``
operation: a redelivered or repeated event finds its document there (409,
``version_conflict_engine_exception``, :func:`is_already_indexed`) and changes nothing, so the
first occurrence decides and no event counts twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC
from typing import Any, Literal

from clickstream.core.events import Event, format_timestamp

INDEX_PREFIX = "clickstream-events"
INDEX_PATTERN = f"{INDEX_PREFIX}-*"
ALIAS = INDEX_PREFIX
TEMPLATE_NAME = INDEX_PREFIX

DATE_FORMAT = "strict_date_optional_time||epoch_millis"
"""Accepts ``2026-03-07T14:04:56.683790`` (no zone: UTC) and ``...683790Z``; stored to the ms."""

MAX_BULK_DOCS = 500
MAX_BULK_BYTES = 5 * 1024 * 1024
"""Bounds of one ``_bulk`` request; well under the 10 MiB payload limit of the smallest domains."""

TRANSIENT_ERROR_TYPES: frozenset[str] = frozenset(
    {
        "es_rejected_execution_exception",
        "opensearch_rejected_execution_exception",
        "rejected_execution_exception",
        "circuit_breaking_exception",
        "unavailable_shards_exception",
        "no_shard_available_action_exception",
        "primary_missing_action_exception",
        "process_cluster_event_timeout_exception",
        "timeout_exception",
    }
)
"""Item error types that say "not now" rather than "never": the record is retried."""

ErrorKind = Literal["transient", "permanent"]
Action = dict[str, Any]

_MAPPING_PROPERTIES: dict[str, dict[str, str]] = {
    "event_id": {"type": "keyword"},
    "custid": {"type": "long"},
    "trafficfrom": {"type": "keyword"},
    "url": {"type": "keyword"},
    "device": {"type": "keyword"},
    "touchproduct": {"type": "long"},
    "trans_timestamp": {"type": "date", "format": DATE_FORMAT},
    "@timestamp": {"type": "date", "format": DATE_FORMAT},
}


def index_pattern(prefix: str = INDEX_PREFIX) -> str:
    """The pattern matching every daily index of ``prefix``."""
    return f"{prefix}-*"


def index_template(
    prefix: str = INDEX_PREFIX, *, shards: int = 1, replicas: int = 0
) -> dict[str, Any]:
    """Body of ``PUT _index_template/<prefix>``: settings, strict mappings and the ``prefix`` alias.

    One shard and no replica suit the local node and a single-node domain; on AWS with two or
    more data nodes, pass ``replicas=1`` (or set it on the indices) so the cluster stays green.
    """
    return {
        "index_patterns": [index_pattern(prefix)],
        "priority": 100,
        "template": {
            "settings": {"index": {"number_of_shards": shards, "number_of_replicas": replicas}},
            "aliases": {prefix: {}},
            "mappings": {
                "dynamic": "strict",
                "properties": {name: dict(spec) for name, spec in _MAPPING_PROPERTIES.items()},
            },
        },
        "_meta": {"description": "clickstream events, one index per UTC day of event time"},
    }


def index_name(event: Event, prefix: str = INDEX_PREFIX) -> str:
    """The daily index of the event's time (UTC): ``<prefix>-YYYY.MM.DD``."""
    return f"{prefix}-{event.trans_timestamp.astimezone(UTC):%Y.%m.%d}"


def document(event: Event) -> dict[str, Any]:
    """The indexed document: every event field plus ``@timestamp`` (UTC, with ``Z``)."""
    return {**event.to_dict(), "@timestamp": format_timestamp(event.trans_timestamp) + "Z"}


def bulk_actions(events: Iterable[Event], prefix: str = INDEX_PREFIX) -> list[Action]:
    """One ``create`` action per event, ``_id`` = ``event_id``, into its daily index."""
    return [
        {
            "_op_type": "create",
            "_index": index_name(event, prefix),
            "_id": event.event_id,
            "_source": document(event),
        }
        for event in events
    ]


def bulk_lines(action: Action) -> str:
    """The two NDJSON lines of one action in a ``_bulk`` body (metadata, then the source)."""
    metadata = {action.get("_op_type", "index"): {"_index": action["_index"], "_id": action["_id"]}}
    return _compact(metadata) + "\n" + _compact(action["_source"]) + "\n"


def bulk_body(actions: Sequence[Action]) -> str:
    """The ``_bulk`` request body for ``actions``."""
    return "".join(bulk_lines(action) for action in actions)


def action_size(action: Action) -> int:
    """Bytes the action adds to a ``_bulk`` body."""
    return len(bulk_lines(action).encode("utf-8"))


def chunk_actions(
    actions: Iterable[Action], max_docs: int = MAX_BULK_DOCS, max_bytes: int = MAX_BULK_BYTES
) -> list[list[Action]]:
    """Split actions, in order, into chunks of at most ``max_docs`` actions and ``max_bytes``.

    An action bigger than ``max_bytes`` on its own still goes out, alone in its chunk.
    """
    if max_docs < 1 or max_bytes < 1:
        raise ValueError(f"max_docs and max_bytes must be positive, got {max_docs}, {max_bytes}")
    chunks: list[list[Action]] = []
    current: list[Action] = []
    current_bytes = 0
    for action in actions:
        size = action_size(action)
        if current and (len(current) >= max_docs or current_bytes + size > max_bytes):
            chunks.append(current)
            current, current_bytes = [], 0
        current.append(action)
        current_bytes += size
    if current:
        chunks.append(current)
    return chunks


def is_already_indexed(status: int, error: dict[str, Any] | None) -> bool:
    """True when a ``create`` found its document there already: the event was indexed before."""
    return status == 409 and "version_conflict_engine_exception" in _error_types(error)


def classify_item_error(status: int, error: dict[str, Any] | None) -> ErrorKind:
    """Whether a failed bulk item may succeed later (transient) or never will (permanent).

    429 and 5xx, rejected execution, circuit breaking and unavailable shards are transient;
    mapping and parsing errors, illegal arguments and any other 4xx are permanent.
    """
    if status == 429 or status >= 500:
        return "transient"
    if _error_types(error) & TRANSIENT_ERROR_TYPES:
        return "transient"
    return "permanent"


def error_reason(status: int, error: dict[str, Any] | None) -> str:
    """A one-line reason for a failed item, e.g. ``400 mapper_parsing_exception: failed to...``."""
    if not error:
        return f"{status} unknown error"
    reason = f"{status} {error.get('type', 'error')}: {error.get('reason', '')}".rstrip(": ")
    cause = error.get("caused_by")
    if isinstance(cause, dict) and cause.get("reason"):
        reason += f" (caused by {cause.get('type', 'error')}: {cause['reason']})"
    return reason


def _error_types(error: dict[str, Any] | None) -> set[str]:
    """The error's type and those of its ``caused_by`` chain."""
    types: set[str] = set()
    while isinstance(error, dict):
        if isinstance(error.get("type"), str):
            types.add(error["type"])
        error = error.get("caused_by")
    return types


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
