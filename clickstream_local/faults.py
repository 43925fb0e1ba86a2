"""Test-only faults of the local stack: records the stream consumers' rules raise on.

A poison record is one the window counter's or the sessionizer's rules cannot process, as a bug
in them would make a valid event. To exercise what then happens (the records before it commit,
Lambda retries from it, keeps the rest of the batch in the on-failure bucket, and a redrive
after the fix applies it), the local stack can make chosen events poison:
``CLICKSTREAM_POISON_EVENT_IDS`` (comma-separated event ids) in the environment of the stack
daemon makes each Lambda worker it starts wrap the consumers' rules (:func:`install_poison`).
Removing the variable is the fix: a worker started without it (a restarted daemon, or
``clickstream redrive``) runs the rules as they are. Nothing of this is deployed: the domain
package has no branch for it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping
from typing import Any

POISON_VARIABLE = "CLICKSTREAM_POISON_EVENT_IDS"


class InjectedPoison(RuntimeError):
    """The error the rules raise on a poison event."""


def poison_event_ids(environment: Mapping[str, str]) -> frozenset[str]:
    """The event ids ``CLICKSTREAM_POISON_EVENT_IDS`` names (none when it is unset)."""
    value = environment.get(POISON_VARIABLE, "")
    return frozenset(part.strip() for part in value.split(",") if part.strip())


def poisoned_window_rules(
    rules: Callable[..., Any], event_ids: Collection[str]
) -> Callable[..., Any]:
    """The window counter's ``process_shard_batch``, raising on a new record of a poison event."""

    def process(records: Any, checkpoint: Any, **options: Any) -> Any:
        for record in records:
            event = record.event
            poison = event is not None and event.event_id in event_ids
            if poison and not checkpoint.applied(record.sequence_number):
                raise InjectedPoison(f"event {event.event_id} is poison")
        return rules(records, checkpoint, **options)

    return process


def poisoned_session_rules(
    rules: Callable[..., Any], event_ids: Collection[str]
) -> Callable[..., Any]:
    """The sessionizer's ``accept_events``, raising on a poison event."""

    def accept(events: Any, *arguments: Any, **options: Any) -> Any:
        events = list(events)
        for event in events:
            if event.event_id in event_ids:
                raise InjectedPoison(f"event {event.event_id} is poison")
        return rules(events, *arguments, **options)

    return accept


def install_poison(environment: Mapping[str, str] = os.environ) -> bool:
    """Wrap the consumers' rules in this process if the environment names poison events.

    Returns whether it did. Call it in a Lambda worker, once its handler is imported.
    """
    event_ids = poison_event_ids(environment)
    if not event_ids:
        return False
    from clickstream.consumers import sessionizer, window_counter

    window_counter.process_shard_batch = poisoned_window_rules(  # type: ignore[assignment]
        window_counter.process_shard_batch, event_ids
    )
    sessionizer.accept_events = poisoned_session_rules(  # type: ignore[assignment]
        sessionizer.accept_events, event_ids
    )
    return True
