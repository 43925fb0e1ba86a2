"""Window state in DynamoDB: per-shard partial sets of each (window, key), merged by set union.

**Item layout** (state table, string keys ``pk`` and ``sk``)::

    pk              "W#<metric>#<size_seconds>#<window_start_us>"
    sk              "<key>#<shard_id>"
    window_key      the url (unique-users) or trafficfrom (top-sources)
    shard_id        the shard that wrote the partial
    window_end_us   window end, microseconds since the epoch
    expires_at      TTL: window end in epoch seconds + the retention
    members  NS     custids (unique-users) or event digests (top-sources), on time
    events   NS     unique-users only: digests of the on-time events
    late     NS     digests of the late events
    members_sketch, events_sketch, late_sketch  B
                    the HyperLogLog sketch (4 098 bytes) of a set's values folded away
    revision N      how many times the item was rewritten whole (absent until the first time)

**Registry of first occurrences**: in the same table, written with the checkpoint
(:mod:`clickstream.adapters.aws.first_occurrences`).

**Exact sets.** A set holds at most the exact-set limit of values (``exact_limit``, 4 096 by
default, the ``EXACT_SET_LIMIT`` setting). A batch sends ONE update per (window, key) it
touches: ``SET`` of the descriptive attributes and ``ADD`` of its sets, on condition that each
set it adds to holds at most ``exact_limit − len(added)`` values. ``ADD`` on a set is a union,
so applying the same batch twice changes nothing; the updates commit with the shard checkpoint
through :func:`clickstream.adapters.aws.dynamodb.commit`. An update is sent with
``ReturnValuesOnConditionCheckFailure = ALL_OLD``.

**Folding.** When that condition fails (the transaction is cancelled and names the item, with
its attributes), or when the batch alone brings more than the limit (the item is then read with
a strongly consistent GetItem), the partial is rewritten whole: the batch is added with
:func:`clickstream.core.window_counting.add_delta`, which folds each set that would pass the
limit into its sketch, and the item is written with ``SET`` (and ``REMOVE`` of emptied sets),
on condition that it is still what was read: the same ``revision`` and the same set sizes (sets
only grow between rewrites, so equal sizes mean equal sets). The rewrite raises ``revision``.
Rewrites come after the additions, so they commit in the checkpoint's transaction when they fit
(:func:`window_updates`). The transaction is then sent again, until every item's condition holds
(:data:`COMMIT_ROUNDS_PER_TRANSACTION` rounds per transaction, then CheckpointConflict, so the
batch is recomputed). A sketch update takes register maxima: sending it again changes nothing.

A reader unions the partials of all shards
(:func:`clickstream.core.window_counting.merge_partials`). Unique-users items keep ``events``
for the late count, since their members are custids.

**Bounds.** DynamoDB counts an item as the UTF-8 bytes of its attribute names plus its values:
a string's UTF-8 bytes, a binary's bytes, a number about 1 byte per 2 significant digits plus 1,
a set the sum of its elements (:func:`item_size`). A digest (≤ 20 digits) or a custid
(≤ 19 digits) takes at most :data:`MAX_NUMBER_BYTES` = 11 bytes. Keeping
:data:`RESERVED_BYTES` = 8 KiB for the keys (a key of 256 characters is at most 1 KiB of UTF-8,
and it appears twice) and the scalar attributes, the largest item holds three full exact sets
and three sketches: ``3 × (limit × 11 + 4 112) + 8 192`` bytes, 155 696 bytes (152 KiB) at the
default limit of 4 096, under 40 % of DynamoDB's 400 KiB. The limit may be at most
:data:`MAX_EXACT_SET_LIMIT` = 11 790. So no write is ever refused for its size, however many
users a page has.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from clickstream.adapters.aws.dynamodb import MAX_TRANSACTION_ITEMS, checkpoint_put, commit
from clickstream.adapters.aws.first_occurrences import (
    query_partition,
    read_registered,
    registry_puts,
)
from clickstream.core.checkpoints import CheckpointConflict
from clickstream.core.sketch import SERIALIZED_BYTES, HyperLogLog
from clickstream.core.window_counting import (
    DEFAULT_EXACT_SET_LIMIT,
    ShardBatchResult,
    WindowDelta,
    WindowPartial,
    WindowValue,
    add_delta,
    merge_partials,
)
from clickstream.core.windows import UNIQUE_USERS, WindowKey, to_micros
from clickstream.ports import WindowStateStore

MAX_ITEM_BYTES = 400 * 1024
"""DynamoDB's item size limit."""
RESERVED_BYTES = 8 * 1024
"""Room kept for the keys (a key may be 256 characters) and the scalar attributes."""
MAX_NUMBER_BYTES = 11
"""Stored size of a number of up to 20 significant digits."""
MAX_NUMBERS_PER_ITEM = (MAX_ITEM_BYTES - RESERVED_BYTES) // MAX_NUMBER_BYTES
"""Numbers one item would hold across its sets without sketches (36 491)."""
SET_NAMES = ("members", "events", "late")
"""The sets of a partial, in item order."""
SKETCH_SUFFIX = "_sketch"
MAX_SKETCH_ATTRIBUTE_BYTES = len("members" + SKETCH_SUFFIX) + SERIALIZED_BYTES
"""The largest sketch attribute, name included (4 112 bytes)."""
MAX_EXACT_SET_LIMIT = (
    MAX_ITEM_BYTES - RESERVED_BYTES - len(SET_NAMES) * MAX_SKETCH_ATTRIBUTE_BYTES
) // (len(SET_NAMES) * MAX_NUMBER_BYTES)
"""The highest exact-set limit whose largest item stays under 400 KiB (11 790)."""
COMMIT_ROUNDS_PER_TRANSACTION = 2
"""Commit rounds :meth:`DynamoWindowStateStore.apply` allows per transaction of the batch."""
DEFAULT_RETENTION_DAYS = 7
CONSUMER = "window-counter"
"""The consumer whose state this table holds (the registry's items carry its name)."""
_SECONDS_PER_DAY = 86_400
_MICROS_PER_SECOND = 1_000_000


def window_pk(metric: str, size_seconds: int, window_start: datetime) -> str:
    """Partition key of every partial of one window."""
    return f"W#{metric}#{size_seconds}#{to_micros(window_start)}"


def window_sk(key: str, shard_id: str) -> str:
    """Sort key of one shard's partial of one key."""
    return f"{key}#{shard_id}"


def expires_at(window_key: WindowKey, retention_days: int) -> int:
    """TTL of a partial: the window end in epoch seconds plus the retention."""
    end_seconds = to_micros(window_key.window_end) // _MICROS_PER_SECOND
    return end_seconds + retention_days * _SECONDS_PER_DAY


def item_key(window_key: WindowKey, shard_id: str) -> dict[str, Any]:
    """Primary key of one shard's partial of one (window, key)."""
    pk = window_pk(window_key.metric, window_key.size_seconds, window_key.window_start)
    return {"pk": {"S": pk}, "sk": {"S": window_sk(window_key.key, shard_id)}}


def stored_set_names(metric: str) -> tuple[str, ...]:
    """The sets an item of ``metric`` stores (top-sources items keep no separate ``events``)."""
    return SET_NAMES if metric == UNIQUE_USERS else ("members", "late")


@dataclass(frozen=True)
class StoredPartial:
    """A partial as read from its item, and the item's ``revision`` (0 when it has none)."""

    partial: WindowPartial
    revision: int = 0


def fits_exact_update(delta: WindowDelta, exact_limit: int) -> bool:
    """True when no set of the batch alone passes the limit, so an ``ADD`` may do."""
    return all(len(values) <= exact_limit for values in (delta.members, delta.events, delta.late))


def window_update(
    table: str,
    window_key: WindowKey,
    delta: WindowDelta,
    shard_id: str,
    retention_days: int,
    exact_limit: int = DEFAULT_EXACT_SET_LIMIT,
) -> dict[str, Any]:
    """The idempotent TransactWriteItems ``Update`` adding a batch's sets to one partial.

    It holds only while every set it adds to keeps at most ``exact_limit`` values; it asks for
    the item's attributes when that condition fails (see the module docstring).
    """
    if not fits_exact_update(delta, exact_limit):
        raise ValueError(f"a set of the batch passes the exact-set limit of {exact_limit}")
    values: dict[str, Any] = {
        ":key": {"S": window_key.key},
        ":shard": {"S": shard_id},
        ":end": {"N": str(to_micros(window_key.window_end))},
        ":expires": {"N": str(expires_at(window_key, retention_days))},
    }
    sets = {"members": delta.members, "late": delta.late}
    if window_key.metric == UNIQUE_USERS:
        sets["events"] = delta.events
    additions: list[str] = []
    conditions: list[str] = []
    for name, numbers in sets.items():
        if numbers:
            additions.append(f"{name} :{name}")
            values[f":{name}"] = {"NS": [str(number) for number in sorted(numbers)]}
            conditions.append(f"(attribute_not_exists({name}) OR size({name}) <= :{name}_room)")
            values[f":{name}_room"] = {"N": str(exact_limit - len(numbers))}
    expression = (
        "SET window_key = :key, shard_id = :shard, window_end_us = :end, expires_at = :expires"
    )
    update: dict[str, Any] = {
        "TableName": table,
        "Key": item_key(window_key, shard_id),
        "UpdateExpression": expression,
        "ExpressionAttributeValues": values,
    }
    if additions:
        update["UpdateExpression"] += " ADD " + ", ".join(additions)
        update["ConditionExpression"] = " AND ".join(conditions)
        update["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    return {"Update": update}


def partial_attributes(
    window_key: WindowKey,
    partial: WindowPartial,
    shard_id: str,
    retention_days: int,
    revision: int,
) -> dict[str, Any]:
    """The whole item of one partial, keys included, as DynamoDB attribute values.

    Empty exact sets and missing sketches are left out (DynamoDB stores no empty set).
    """
    item: dict[str, Any] = {
        **item_key(window_key, shard_id),
        "window_key": {"S": window_key.key},
        "shard_id": {"S": shard_id},
        "window_end_us": {"N": str(to_micros(window_key.window_end))},
        "expires_at": {"N": str(expires_at(window_key, retention_days))},
        "revision": {"N": str(revision)},
    }
    for name in stored_set_names(window_key.metric):
        exact: frozenset[int] = getattr(partial, name)
        sketch: HyperLogLog | None = getattr(partial, name + SKETCH_SUFFIX)
        if exact:
            item[name] = {"NS": [str(number) for number in sorted(exact)]}
        if sketch is not None:
            item[name + SKETCH_SUFFIX] = {"B": sketch.to_bytes()}
    return item


def rewrite_update(
    table: str,
    window_key: WindowKey,
    delta: WindowDelta,
    shard_id: str,
    retention_days: int,
    exact_limit: int,
    stored: StoredPartial | None,
) -> dict[str, Any]:
    """The TransactWriteItems ``Update`` rewriting one partial whole: ``stored`` plus ``delta``.

    Sets that would pass ``exact_limit`` are folded into their sketches. The update holds only
    while the item is still ``stored`` (absent, when ``stored`` is None).
    """
    before = stored.partial if stored is not None else WindowPartial(window_key.key, shard_id)
    after = add_delta(before, delta, exact_limit)
    revision = (stored.revision if stored is not None else 0) + 1
    item = partial_attributes(window_key, after, shard_id, retention_days, revision)
    settable = [name for name in item if name not in ("pk", "sk")]
    names = {f"#{name}": name for name in settable}
    values = {f":{name}": item[name] for name in settable}
    expression = "SET " + ", ".join(f"#{name} = :{name}" for name in settable)
    removed = [
        name
        for name in stored_set_names(window_key.metric)
        if getattr(before, name) and name not in item
    ]
    if removed:
        names.update({f"#{name}": name for name in removed})
        expression += " REMOVE " + ", ".join(f"#{name}" for name in removed)
    if stored is None:
        condition = "attribute_not_exists(pk)"
    else:
        condition, expected = _unchanged_since(window_key.metric, stored)
        values.update(expected)
    return {
        "Update": {
            "TableName": table,
            "Key": item_key(window_key, shard_id),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def _unchanged_since(metric: str, stored: StoredPartial) -> tuple[str, dict[str, Any]]:
    """The condition that an item is still ``stored``: its revision and its set sizes."""
    values: dict[str, Any] = {}
    if stored.revision:
        conditions = ["revision = :read_revision"]
        values[":read_revision"] = {"N": str(stored.revision)}
    else:
        conditions = ["attribute_exists(pk) AND attribute_not_exists(revision)"]
    for name in stored_set_names(metric):
        size = len(getattr(stored.partial, name))
        if size:
            conditions.append(f"size({name}) = :read_{name}")
            values[f":read_{name}"] = {"N": str(size)}
        else:
            conditions.append(f"attribute_not_exists({name})")
    return " AND ".join(conditions), values


def window_updates(
    table: str,
    result: ShardBatchResult,
    retention_days: int,
    exact_limit: int = DEFAULT_EXACT_SET_LIMIT,
    stored: Mapping[WindowKey, StoredPartial | None] | None = None,
) -> list[dict[str, Any]]:
    """One update per (window, key) the batch touched, in a stable order.

    A key in ``stored`` (read before, or named by a cancelled transaction) is rewritten whole
    (:func:`rewrite_update`); the others get an ``ADD`` (:func:`window_update`). Rewrites come
    last, so they commit in the transaction that carries the checkpoint whenever they fit: a
    rewrite is conditional on the revision it read, so a rewrite already committed by an earlier
    transaction of a commit that then failed would be refused when the commit is sent again.
    """
    shard_id = result.checkpoint.shard_id
    known = stored or {}
    additions: list[dict[str, Any]] = []
    rewrites: list[dict[str, Any]] = []
    for window_key, delta in result.deltas.items():
        if window_key in known:
            rewrites.append(
                rewrite_update(
                    table,
                    window_key,
                    delta,
                    shard_id,
                    retention_days,
                    exact_limit,
                    known[window_key],
                )
            )
        else:
            additions.append(
                window_update(table, window_key, delta, shard_id, retention_days, exact_limit)
            )
    return additions + rewrites


def partial_from_item(metric: str, item: Mapping[str, Any]) -> WindowPartial:
    """A stored item (DynamoDB attribute values) as a partial."""

    def numbers(name: str) -> frozenset[int]:
        return frozenset(int(value) for value in item.get(name, {}).get("NS", []))

    def sketch(name: str) -> HyperLogLog | None:
        attribute = item.get(name + SKETCH_SUFFIX)
        return None if attribute is None else HyperLogLog.from_bytes(bytes(attribute["B"]))

    members = numbers("members")
    members_sketch = sketch("members")
    unique_users = metric == UNIQUE_USERS
    return WindowPartial(
        key=item["window_key"]["S"],
        shard_id=item["shard_id"]["S"],
        members=members,
        events=numbers("events") if unique_users else members,
        late=numbers("late"),
        members_sketch=members_sketch,
        events_sketch=sketch("events") if unique_users else members_sketch,
        late_sketch=sketch("late"),
    )


def stored_from_item(metric: str, item: Mapping[str, Any]) -> StoredPartial:
    """A stored item as a partial and its revision."""
    revision = int(item["revision"]["N"]) if "revision" in item else 0
    return StoredPartial(partial_from_item(metric, item), revision)


def item_size(item: Mapping[str, Any]) -> int:
    """The stored size of an item (attribute values) as DynamoDB counts it against 400 KiB."""
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def attribute_size(value: Mapping[str, Any]) -> int:
    """The stored size of one attribute value: S, N, B, their sets, BOOL or NULL."""
    ((kind, payload),) = value.items()
    if kind == "S":
        return len(str(payload).encode())
    if kind == "N":
        return number_size(str(payload))
    if kind == "B":
        return len(payload)
    if kind == "SS":
        return sum(len(str(text).encode()) for text in payload)
    if kind == "NS":
        return sum(number_size(str(number)) for number in payload)
    if kind == "BS":
        return sum(len(data) for data in payload)
    if kind in ("BOOL", "NULL"):
        return 1
    raise ValueError(f"no size rule for attribute type {kind}")


def number_size(text: str) -> int:
    """A number's size: 1 byte per 2 significant digits, plus 1 (plus 1 when negative)."""
    digits = text.lstrip("-").replace(".", "").strip("0") or "0"
    return math.ceil(len(digits) / 2) + 1 + (1 if text.startswith("-") else 0)


class DynamoWindowStateStore(WindowStateStore):
    """Window partials in a DynamoDB state table; checkpoints in ``checkpoint_table``."""

    def __init__(
        self,
        client: Any,
        table: str,
        *,
        checkpoint_table: str | None = None,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        exact_limit: int = DEFAULT_EXACT_SET_LIMIT,
    ) -> None:
        if not 1 <= exact_limit <= MAX_EXACT_SET_LIMIT:
            raise ValueError(
                f"the exact-set limit must be 1 to {MAX_EXACT_SET_LIMIT} (items stay under "
                f"400 KiB), got {exact_limit}"
            )
        self.client = client
        self.table = table
        self.checkpoint_table = checkpoint_table or table
        self.retention_days = retention_days
        self.exact_limit = exact_limit

    def registered(
        self, shard_id: str, buckets: Iterable[datetime]
    ) -> dict[datetime, frozenset[int]]:
        """The shard's registry items of each bucket, one strongly consistent Query per bucket."""
        return read_registered(self.client, self.table, CONSUMER, shard_id, buckets)

    def apply(self, result: ShardBatchResult) -> None:
        """Commit the batch's updates, its registrations and its checkpoint (CheckpointConflict
        propagates); the registrations go in the checkpoint's own transaction.

        Partials the batch alone would take past the limit are read first; a partial whose
        ``ADD`` condition fails is rewritten whole from the attributes the cancelled
        transaction returned, and the commit is sent again (see the module docstring).
        """
        shard_id = result.checkpoint.shard_id
        checkpoint = checkpoint_put(
            self.checkpoint_table, result.checkpoint, result.checkpoint_before.version
        )
        registrations = registry_puts(
            self.table,
            CONSUMER,
            shard_id,
            result.checkpoint.version,
            result.registrations,
            self.retention_days,
        )
        stored: dict[WindowKey, StoredPartial | None] = {
            window_key: self._read(window_key, shard_id)
            for window_key, delta in result.deltas.items()
            if not fits_exact_update(delta, self.exact_limit)
        }
        actions = len(result.deltas) + len(registrations)
        transactions = math.ceil(actions / (MAX_TRANSACTION_ITEMS - 1)) or 1
        for _ in range(COMMIT_ROUNDS_PER_TRANSACTION * transactions):
            updates = window_updates(
                self.table, result, self.retention_days, self.exact_limit, stored
            )
            try:
                commit(self.client, updates, checkpoint, registrations)
                return
            except ClientError as error:
                refused = _refused_items(error)
                if refused is None:
                    raise
                self._reread(result, shard_id, refused, stored)
        raise CheckpointConflict("the window state kept changing during the commit")

    def _reread(
        self,
        result: ShardBatchResult,
        shard_id: str,
        refused: dict[tuple[str, str], dict[str, Any] | None],
        stored: dict[WindowKey, StoredPartial | None],
    ) -> None:
        """Record the refused partials as stored; read every partial again if one is unnamed.

        A refusal comes without attributes when its item vanished since it was read (a rewrite
        of an expired item), or from an endpoint that does not return them; the batch's
        partials are then read one by one.
        """
        unnamed = None in refused.values()
        for window_key in result.deltas:
            key = item_key(window_key, shard_id)
            item = refused.get((key["pk"]["S"], key["sk"]["S"]))
            if item is not None:
                stored[window_key] = stored_from_item(window_key.metric, item)
            elif unnamed:
                stored[window_key] = self._read(window_key, shard_id)

    def _read(self, window_key: WindowKey, shard_id: str) -> StoredPartial | None:
        """One partial, strongly consistent; None when the item does not exist."""
        response = self.client.get_item(
            TableName=self.table, Key=item_key(window_key, shard_id), ConsistentRead=True
        )
        item = response.get("Item")
        return None if item is None else stored_from_item(window_key.metric, item)

    def read_window(
        self, metric: str, size_seconds: int, window_start: datetime
    ) -> dict[str, WindowValue]:
        """Query every partial of the window (strongly consistent) and merge them."""
        pk = window_pk(metric, size_seconds, window_start)
        return merge_partials(
            [
                partial_from_item(metric, item)
                for item in query_partition(self.client, self.table, pk)
            ]
        )


def _refused_items(error: ClientError) -> dict[tuple[str, str], dict[str, Any] | None] | None:
    """Items whose condition cancelled a transaction, by (pk, sk); None for any other error.

    A refused item the response does not name (it had no attributes to return) is keyed
    ``("", "")`` with no attributes.
    """
    if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return None
    refused: dict[tuple[str, str], dict[str, Any] | None] = {}
    for reason in error.response.get("CancellationReasons") or []:
        code = reason.get("Code")
        if code in (None, "None"):
            continue
        if code != "ConditionalCheckFailed":
            return None
        item = reason.get("Item")
        if item is None:
            refused[("", "")] = None
        else:
            refused[(item["pk"]["S"], item["sk"]["S"])] = item
    return refused or None
