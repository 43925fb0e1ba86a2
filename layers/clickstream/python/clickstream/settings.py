"""The consumers' settings, read from the Lambda environment.

One dataclass per consumer (:class:`WindowCounterSettings`, :class:`SessionizerSettings`,
:class:`IndexerSettings`); ``clickstream.composition`` builds each consumer's ports from them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from clickstream.core.records import DEFAULT_MAX_CLOCK_SKEW
from clickstream.core.search_documents import INDEX_PREFIX, MAX_BULK_BYTES, MAX_BULK_DOCS
from clickstream.core.session_rules import SessionRules
from clickstream.core.window_counting import DEFAULT_EXACT_SET_LIMIT

DEFAULT_QUARANTINE_PREFIX = "quarantine/search-indexer/"
AUTH_MODES: tuple[str, ...] = ("sigv4", "none")

_INDEX_PREFIX_SYNTAX = re.compile(r"[a-z0-9][a-z0-9._-]{0,199}")


def required(env: Mapping[str, str], name: str) -> str:
    """The non-empty value of ``name``; a ValueError naming it when missing."""
    value = env.get(name, "").strip()
    if not value:
        raise ValueError(f"{name} is not set")
    return value


def seconds(env: Mapping[str, str], name: str, default: float) -> timedelta:
    """A duration given in seconds by ``name``, or ``default`` seconds."""
    return timedelta(seconds=float(env.get(name, str(default))))


def max_clock_skew(env: Mapping[str, str]) -> timedelta:
    """``MAX_CLOCK_SKEW_SECONDS``: how far an event's time may be ahead of its record's arrival.

    300 seconds when unset; at least 1 second (``MaxClockSkewSeconds``' MinValue), since Kinesis
    gives arrival times to the millisecond only.
    """
    text = env.get("MAX_CLOCK_SKEW_SECONDS", "").strip()
    if not text:
        return DEFAULT_MAX_CLOCK_SKEW
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"MAX_CLOCK_SKEW_SECONDS must be a number, got {text!r}") from None
    if not math.isfinite(value) or value < 1:
        raise ValueError(f"MAX_CLOCK_SKEW_SECONDS must be at least 1 second, got {text!r}")
    return timedelta(seconds=value)


@dataclass(frozen=True)
class WindowCounterSettings:
    """The window counter's configuration (the finalizer's too)."""

    state_table: str
    results_table: str
    stream_name: str
    quarantine_bucket: str
    quarantine_prefix: str
    allowed_lateness: timedelta
    idle_timeout: timedelta
    retention_days: int
    max_clock_skew: timedelta
    exact_set_limit: int = DEFAULT_EXACT_SET_LIMIT
    """``EXACT_SET_LIMIT``: values one set of a window partial holds exactly before a sketch."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WindowCounterSettings:
        """Read the settings; a missing required variable raises ValueError naming it."""
        return cls(
            state_table=required(env, "STATE_TABLE"),
            results_table=required(env, "RESULTS_TABLE"),
            stream_name=required(env, "STREAM_NAME"),
            quarantine_bucket=required(env, "QUARANTINE_BUCKET"),
            quarantine_prefix=env.get("QUARANTINE_PREFIX", "quarantine/window-counter/"),
            allowed_lateness=seconds(env, "ALLOWED_LATENESS_SECONDS", 30),
            idle_timeout=seconds(env, "IDLE_TIMEOUT_SECONDS", 60),
            retention_days=int(env.get("STATE_RETENTION_DAYS", "7")),
            max_clock_skew=max_clock_skew(env),
            exact_set_limit=_positive_int(env, "EXACT_SET_LIMIT", DEFAULT_EXACT_SET_LIMIT),
        )


@dataclass(frozen=True)
class SessionizerSettings:
    """The sessionizer's configuration (the finalizer's too)."""

    state_table: str
    stream_name: str
    delivery_stream: str
    """``AGGREGATED_DELIVERY_STREAM``: the Firehose stream of the per-minute rows."""
    sessions_delivery_stream: str
    """``SESSIONS_DELIVERY_STREAM``: the Firehose stream of the gap sessions."""
    lake_bucket: str
    quarantine_prefix: str
    allowed_lateness: timedelta
    idle_timeout: timedelta
    inactivity_timeout: timedelta
    max_duration: timedelta
    max_clock_skew: timedelta

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], *, state_table_variable: str = "STATE_TABLE"
    ) -> SessionizerSettings:
        """Read the settings; a missing required variable raises ValueError naming it.

        The state table is named by ``state_table_variable``: the finalizer, which also reads
        the window counter's ``STATE_TABLE``, names the sessionizer's ``SESSION_STATE_TABLE``.
        """
        return cls(
            state_table=required(env, state_table_variable),
            stream_name=required(env, "STREAM_NAME"),
            delivery_stream=required(env, "AGGREGATED_DELIVERY_STREAM"),
            sessions_delivery_stream=required(env, "SESSIONS_DELIVERY_STREAM"),
            lake_bucket=required(env, "LAKE_BUCKET"),
            quarantine_prefix=env.get("QUARANTINE_PREFIX", "quarantine/sessionizer/"),
            allowed_lateness=seconds(env, "ALLOWED_LATENESS_SECONDS", 30),
            idle_timeout=seconds(env, "IDLE_TIMEOUT_SECONDS", 60),
            inactivity_timeout=timedelta(
                minutes=float(env.get("SESSION_INACTIVITY_MINUTES", "30"))
            ),
            max_duration=timedelta(hours=float(env.get("SESSION_MAX_HOURS", "24"))),
            max_clock_skew=max_clock_skew(env),
        )

    @property
    def rules(self) -> SessionRules:
        """The session rules these settings give."""
        return SessionRules(self.allowed_lateness, self.inactivity_timeout, self.max_duration)


@dataclass(frozen=True)
class IndexerSettings:
    """The search indexer's configuration."""

    opensearch_url: str
    quarantine_bucket: str
    auth: str = "sigv4"
    region: str | None = None
    index_prefix: str = INDEX_PREFIX
    quarantine_prefix: str = DEFAULT_QUARANTINE_PREFIX
    bulk_max_docs: int = MAX_BULK_DOCS
    bulk_max_bytes: int = MAX_BULK_BYTES
    max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW

    def __post_init__(self) -> None:
        if not re.match(r"https?://[^/\s]+", self.opensearch_url):
            raise ValueError(f"OPENSEARCH_URL must be an http(s) URL, got {self.opensearch_url!r}")
        if not self.quarantine_bucket:
            raise ValueError("QUARANTINE_BUCKET is not set")
        if self.auth not in AUTH_MODES:
            raise ValueError(f"OPENSEARCH_AUTH must be one of {', '.join(AUTH_MODES)}")
        if self.auth == "sigv4" and not self.region:
            raise ValueError("OPENSEARCH_AUTH=sigv4 needs AWS_REGION")
        if not _INDEX_PREFIX_SYNTAX.fullmatch(self.index_prefix):
            raise ValueError(f"INDEX_PREFIX {self.index_prefix!r} is not a valid index name")
        if self.bulk_max_docs < 1 or self.bulk_max_bytes < 1:
            raise ValueError("BULK_MAX_DOCS and BULK_MAX_BYTES must be positive")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> IndexerSettings:
        """Read OPENSEARCH_*, INDEX_PREFIX, QUARANTINE_*, BULK_*, MAX_CLOCK_SKEW_SECONDS, region."""
        if not env.get("OPENSEARCH_URL"):
            raise ValueError("OPENSEARCH_URL is not set")
        prefix = env.get("QUARANTINE_PREFIX", DEFAULT_QUARANTINE_PREFIX)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return cls(
            opensearch_url=env["OPENSEARCH_URL"].rstrip("/"),
            quarantine_bucket=env.get("QUARANTINE_BUCKET", ""),
            auth=env.get("OPENSEARCH_AUTH", "sigv4").strip().lower(),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
            index_prefix=env.get("INDEX_PREFIX") or INDEX_PREFIX,
            quarantine_prefix=prefix,
            bulk_max_docs=_positive_int(env, "BULK_MAX_DOCS", MAX_BULK_DOCS),
            bulk_max_bytes=_positive_int(env, "BULK_MAX_BYTES", MAX_BULK_BYTES),
            max_clock_skew=max_clock_skew(env),
        )


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name)
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {text!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be positive, got {value}")
    return value
