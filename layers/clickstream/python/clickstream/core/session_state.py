"""The open sessions of one (custid, device) key: their events and a summary, as stored. Pure.

The state of a key (:class:`KeyState`) holds the events still needed in full, those at or after
the start of the first open minute (the *tail*), plus one summary (:class:`Run`) of the older
events of the open gap session (the *head*). Those older events are all before the watermark, so
no event can come between them any more and the rules only need their first and last times and
urls, count, first traffic source and checkout flag. The tail is bounded by the events of one key
within the allowed lateness plus one minute, whatever the length of the session: a session of
thousands of events over hours stays a few hundred bytes plus its recent tail.

The rules that change states are in :mod:`clickstream.core.session_rules`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from clickstream.core.events import Event
from clickstream.core.sessions import CHECKOUT_URL, SessionKey
from clickstream.core.windows import to_micros

STATE_FORMAT = 1


@dataclass(frozen=True, slots=True)
class TailEvent:
    """What the rules need of one event kept in full; ``in_gap`` is False once its gap session
    is closed or when it was late for gap sessions (it still counts for its minute)."""

    event_id: str
    micros: int
    url: str
    trafficfrom: str
    in_gap: bool = True

    @property
    def order(self) -> tuple[int, str]:
        """Event time, then event_id (as :func:`clickstream.core.sessions.event_order`)."""
        return (self.micros, self.event_id)

    @classmethod
    def of(cls, event: Event, in_gap: bool) -> TailEvent:
        """The part of ``event`` the rules need."""
        return cls(
            event.event_id, to_micros(event.trans_timestamp), event.url, event.trafficfrom, in_gap
        )


@dataclass(frozen=True, slots=True)
class Run:
    """Summary of consecutive events (in event order): a minute or a gap session so far."""

    first_micros: int
    first_id: str
    first_url: str
    first_trafficfrom: str
    last_micros: int
    last_id: str
    last_url: str
    count: int
    reached_checkout: bool

    @classmethod
    def of(cls, event: TailEvent) -> Run:
        """A run of one event."""
        return cls(
            event.micros,
            event.event_id,
            event.url,
            event.trafficfrom,
            event.micros,
            event.event_id,
            event.url,
            1,
            event.url == CHECKOUT_URL,
        )

    def plus(self, event: TailEvent) -> Run:
        """The run extended by ``event``, which comes after all of its events."""
        return replace(
            self,
            last_micros=event.micros,
            last_id=event.event_id,
            last_url=event.url,
            count=self.count + 1,
            reached_checkout=self.reached_checkout or event.url == CHECKOUT_URL,
        )

    def to_list(self) -> list[Any]:
        """Compact JSON form."""
        return [
            self.first_micros,
            self.first_id,
            self.first_url,
            self.first_trafficfrom,
            self.last_micros,
            self.last_id,
            self.last_url,
            self.count,
            self.reached_checkout,
        ]

    @classmethod
    def from_list(cls, data: Sequence[Any]) -> Run:
        """Inverse of :meth:`to_list`."""
        return cls(
            int(data[0]),
            str(data[1]),
            str(data[2]),
            str(data[3]),
            int(data[4]),
            str(data[5]),
            str(data[6]),
            int(data[7]),
            bool(data[8]),
        )


def fold(run: Run | None, events: Iterable[TailEvent]) -> Run | None:
    """``run`` extended by ``events``, given in event order."""
    for event in events:
        run = Run.of(event) if run is None else run.plus(event)
    return run


@dataclass(frozen=True)
class KeyState:
    """The open sessions of one (custid, device) key on one shard."""

    custid: int
    device: str
    head: Run | None = None
    """Summary of the open gap session's events before the tail."""
    tail: tuple[TailEvent, ...] = ()
    """Events at or after the first open minute, in event order."""

    @property
    def key(self) -> SessionKey:
        """(custid, device)"""
        return (self.custid, self.device)

    @property
    def empty(self) -> bool:
        """Nothing open: the state item can be deleted."""
        return self.head is None and not self.tail

    def with_events(self, events: Iterable[TailEvent]) -> KeyState:
        """The state with ``events`` added to the tail, in event order."""
        tail = sorted((*self.tail, *events), key=lambda kept: kept.order)
        return replace(self, tail=tuple(tail))

    def to_json(self) -> str:
        """Compact JSON (the ``state`` attribute of the item)."""
        document = {
            "v": STATE_FORMAT,
            "head": None if self.head is None else self.head.to_list(),
            "tail": [
                [e.event_id, e.micros, e.url, e.trafficfrom, int(e.in_gap)] for e in self.tail
            ],
        }
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, custid: int, device: str, text: str) -> KeyState:
        """Inverse of :meth:`to_json`."""
        document = json.loads(text)
        if document.get("v") != STATE_FORMAT:
            raise ValueError(f"unsupported session state format {document.get('v')!r}")
        head = document["head"]
        tail = tuple(
            TailEvent(str(i), int(t), str(url), str(source), bool(in_gap))
            for i, t, url, source, in_gap in document["tail"]
        )
        return cls(custid, device, None if head is None else Run.from_list(head), tail)


@dataclass(frozen=True)
class KeyChange:
    """One key's state before and after a commit (None: no item), with their close times."""

    key: SessionKey
    before: KeyState | None
    after: KeyState | None
    close_at_before: int | None
    """:func:`~clickstream.core.session_rules.next_close_micros` of ``before`` (µs), where its
    index entry is."""
    close_at_after: int | None
