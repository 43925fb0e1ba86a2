"""Small builders shared by the test tiers."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from clickstream.core.events import Event

MICROSECOND = timedelta(microseconds=1)
_ids = itertools.count(1)


def at(text: str) -> datetime:
    """A UTC datetime from ``YYYY-MM-DDTHH:MM:SS.ffffff``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def make_event(
    moment: datetime,
    *,
    custid: int = 1,
    url: str = "beer_vitrine_nav",
    trafficfrom: str = "google",
    device: str = "browser",
    event_id: str | None = None,
) -> Event:
    """An event at ``moment``; a fresh event_id unless one is given."""
    return Event(
        event_id=event_id or str(uuid.UUID(int=next(_ids))),
        custid=custid,
        trafficfrom=trafficfrom,
        url=url,
        device=device,
        touchproduct=0,
        trans_timestamp=moment,
    )


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll ``condition`` every 0.1 s until it holds; raise AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.1)
