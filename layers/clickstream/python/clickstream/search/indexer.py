"""The search indexer: a Kinesis batch -> OpenSearch documents, bad records -> S3 quarantine.

:func:`index_batch` puts every record of a batch in exactly one place:

- **indexed** (or, for a repeated ``event_id`` in the batch, covered by the first copy's
  document: ``_id`` is the ``event_id`` and the ``index`` op overwrites, so redeliveries and
  duplicates never count twice);
- **quarantined** with a reason: not a valid event (the :class:`InvalidEvent` reason), or refused
  by OpenSearch for good (a mapping error, with OpenSearch's reason);
- **reported failed** (its sequence number), for Lambda to retry: a transient item error, or
  OpenSearch unreachable after bounded retries.

It talks to two ports, :class:`SearchIndex` and :class:`QuarantineSink`; the adapters wrap
opensearch-py and S3.
"""

from __future__ import annotations

import base64
import binascii
import random
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import boto3
from opensearchpy import OpenSearch, Urllib3AWSV4SignerAuth
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import SSLError, TransportError

from clickstream.events import InvalidEvent, parse_event
from clickstream.generator.producer import RetryPolicy
from clickstream.quarantine import (
    QuarantinedRecord,
    QuarantineSink,
)
from clickstream.search.documents import (
    INDEX_PREFIX,
    MAX_BULK_BYTES,
    MAX_BULK_DOCS,
    Action,
    bulk_actions,
    bulk_body,
    chunk_actions,
    classify_item_error,
    error_reason,
    index_template,
)

DEFAULT_QUARANTINE_PREFIX = "quarantine/search-indexer/"
AUTH_MODES: tuple[str, ...] = ("sigv4", "none")
REQUEST_TIMEOUT_SECONDS = 15.0
SEARCH_RETRY_POLICY = RetryPolicy(max_attempts=5, base_delay=0.2, max_delay=4.0)
"""Whole-request retries: at most 5 attempts, about 3 s of backoff in the worst case."""

_INDEX_PREFIX_SYNTAX = re.compile(r"[a-z0-9][a-z0-9._-]{0,199}")
_T = TypeVar("_T")


# ------------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class IndexerSettings:
    """The indexer's configuration, read from the function's environment."""

    opensearch_url: str
    quarantine_bucket: str
    auth: str = "sigv4"
    region: str | None = None
    index_prefix: str = INDEX_PREFIX
    quarantine_prefix: str = DEFAULT_QUARANTINE_PREFIX
    bulk_max_docs: int = MAX_BULK_DOCS
    bulk_max_bytes: int = MAX_BULK_BYTES

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
        """Read OPENSEARCH_URL, OPENSEARCH_AUTH, INDEX_PREFIX, QUARANTINE_*, BULK_* and region."""
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


# ----------------------------------------------------------------------------- search index port
@dataclass(frozen=True, slots=True)
class ItemResult:
    """What OpenSearch did with one bulk action: ``error`` is None when it was indexed."""

    id: str
    status: int
    error: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """True when the document was written."""
        return self.error is None and 200 <= self.status < 300


class SearchIndexError(RuntimeError):
    """A whole request failed: nothing in it is known to be indexed."""


class SearchUnavailable(SearchIndexError):
    """OpenSearch stayed unreachable or overloaded through every retry."""


class SearchIndex(ABC):
    """Where event documents are indexed."""

    @abstractmethod
    def ensure_template(self) -> None:
        """Create or update the index template (idempotent). Raises :class:`SearchIndexError`."""

    @abstractmethod
    def bulk(self, actions: Sequence[Action]) -> list[ItemResult]:
        """Index the actions in one request; one result per action, in order.

        Raises :class:`SearchIndexError` when the request as a whole fails.
        """


class TemplateOnFirstUse(SearchIndex):
    """Puts the index template before the first bulk of the process (once per cold start).

    Daily indices are created by the first document written to them, so the template must be
    in place first; if putting it fails, the bulk fails too and is retried later.
    """

    def __init__(self, index: SearchIndex) -> None:
        self._index = index
        self._template_ready = False

    def ensure_template(self) -> None:
        """Put the template now."""
        self._index.ensure_template()
        self._template_ready = True

    def bulk(self, actions: Sequence[Action]) -> list[ItemResult]:
        """Put the template if not yet done, then bulk."""
        if not self._template_ready:
            self.ensure_template()
        return self._index.bulk(actions)


def http_auth(settings: IndexerSettings, credentials: Any = None) -> Urllib3AWSV4SignerAuth | None:
    """SigV4 signing for Amazon OpenSearch Service (service ``es``), or None for a local node."""
    if settings.auth == "none":
        return None
    credentials = credentials or boto3.Session().get_credentials()
    if credentials is None:
        raise ValueError("OPENSEARCH_AUTH=sigv4 but no AWS credentials were found")
    return Urllib3AWSV4SignerAuth(credentials, settings.region, "es")


def is_transient_request_error(error: Exception) -> bool:
    """Connection failures, timeouts, 429 and 5xx are worth retrying; the rest is not."""
    if isinstance(error, SSLError):
        return False
    if isinstance(error, OpenSearchConnectionError):
        return True
    status = getattr(error, "status_code", None)
    return isinstance(status, int) and (status == 429 or status >= 500)


class OpenSearchIndex(SearchIndex):
    """An OpenSearch cluster reached with opensearch-py, one ``_bulk`` request per call.

    Whole requests that fail transiently are retried with exponential backoff and full jitter,
    at most ``policy.max_attempts`` times; then :class:`SearchUnavailable` is raised.
    """

    def __init__(
        self,
        client: OpenSearch,
        prefix: str = INDEX_PREFIX,
        *,
        policy: RetryPolicy = SEARCH_RETRY_POLICY,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self._policy = policy
        self._sleep = sleep
        self._rng = rng or random.Random()

    @classmethod
    def from_settings(
        cls, settings: IndexerSettings, *, credentials: Any = None, **options: Any
    ) -> OpenSearchIndex:
        """A client for ``settings.opensearch_url`` (its own retries off: ours apply)."""
        client = OpenSearch(
            hosts=[settings.opensearch_url],
            http_auth=http_auth(settings, credentials),
            timeout=REQUEST_TIMEOUT_SECONDS,
            max_retries=0,
            retry_on_timeout=False,
        )
        return cls(client, settings.index_prefix, **options)

    def ensure_template(self) -> None:
        """``PUT _index_template/<prefix>`` with :func:`index_template`."""
        self._call(
            "PUT _index_template",
            lambda: self.client.indices.put_index_template(
                name=self.prefix, body=index_template(self.prefix)
            ),
        )

    def bulk(self, actions: Sequence[Action]) -> list[ItemResult]:
        """One ``_bulk`` request; item results paired with the actions by position."""
        if not actions:
            return []
        body = bulk_body(actions)
        response = self._call("bulk", lambda: self.client.bulk(body=body))
        items = response.get("items", [])
        if len(items) != len(actions):
            raise SearchIndexError(f"bulk answered {len(items)} items for {len(actions)} actions")
        results = []
        for action, item in zip(actions, items, strict=True):
            outcome = next(iter(item.values()))
            results.append(
                ItemResult(
                    id=str(outcome.get("_id", action["_id"])),
                    status=int(outcome.get("status", 0)),
                    error=outcome.get("error"),
                )
            )
        return results

    def _call(self, what: str, request: Callable[[], _T]) -> _T:
        last_error: Exception | None = None
        for attempt in range(1, self._policy.max_attempts + 1):
            if attempt > 1:
                self._sleep(self._policy.delay(attempt - 1, self._rng))
            try:
                return request()
            except TransportError as error:
                if not is_transient_request_error(error):
                    raise SearchIndexError(f"{what} refused: {_describe(error)}") from error
                last_error = error
        raise SearchUnavailable(
            f"{what} failed {self._policy.max_attempts} times; last error: {_describe(last_error)}"
        ) from last_error


def _describe(error: Exception | None) -> str:
    if isinstance(error, TransportError):
        return f"{type(error).__name__}({error.status_code}, {error.error})"
    return repr(error)


# ------------------------------------------------------------------------------------- batches
@dataclass(frozen=True, slots=True)
class KinesisRecord:
    """One record of a Lambda Kinesis event, its data decoded from base64."""

    sequence_number: str
    shard_id: str
    data: bytes
    arrival: datetime | None = None
    decode_error: str | None = None

    @classmethod
    def from_lambda(cls, record: Mapping[str, Any]) -> KinesisRecord:
        """Read ``{"eventID": "<shard>:<seq>", "kinesis": {"data", "sequenceNumber", ...}}``."""
        kinesis = record["kinesis"]
        arrival = kinesis.get("approximateArrivalTimestamp")
        raw = kinesis.get("data", "")
        try:
            data, error = base64.b64decode(raw, validate=True), None
        except (binascii.Error, ValueError):
            data, error = str(raw).encode("utf-8", "replace"), "record data is not valid base64"
        return cls(
            sequence_number=str(kinesis["sequenceNumber"]),
            shard_id=str(record.get("eventID", "")).split(":", 1)[0] or "unknown-shard",
            data=data,
            arrival=datetime.fromtimestamp(float(arrival), UTC) if arrival is not None else None,
            decode_error=error,
        )

    def quarantined(self, reason: str) -> QuarantinedRecord:
        """This record, set aside for ``reason``."""
        return QuarantinedRecord(
            self.sequence_number, self.shard_id, reason, self.data, self.arrival
        )


@dataclass(frozen=True)
class BatchOutcome:
    """Where the records of a batch went.

    ``len(records) == indexed + quarantined + duplicates_in_batch + len(failed_sequence_numbers)``
    where ``duplicates_in_batch`` counts repeats of an ``event_id`` whose first copy was indexed
    (repeats of a quarantined or failed copy share its fate and are counted there).
    """

    indexed: int = 0
    quarantined: int = 0
    duplicates_in_batch: int = 0
    failed_sequence_numbers: list[str] = field(default_factory=list)
    search_error: str | None = None
    """Why OpenSearch could not be written to at all, when that happened."""

    def response(self) -> dict[str, list[dict[str, str]]]:
        """The Lambda partial batch response (``ReportBatchItemFailures``)."""
        return {
            "batchItemFailures": [
                {"itemIdentifier": sequence_number}
                for sequence_number in self.failed_sequence_numbers
            ]
        }

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary for logs."""
        return asdict(self)


def index_batch(
    records: Sequence[Mapping[str, Any]],
    index: SearchIndex,
    quarantine: QuarantineSink,
    *,
    prefix: str = INDEX_PREFIX,
    max_docs: int = MAX_BULK_DOCS,
    max_bytes: int = MAX_BULK_BYTES,
) -> BatchOutcome:
    """Index a Lambda Kinesis batch; quarantine what never will index; report the rest failed.

    Valid events are deduplicated by ``event_id`` (the first copy wins) and sent in bounded
    ``_bulk`` chunks. Once a whole request fails after retries, no further chunk is tried and
    every record not yet indexed is reported failed. Quarantined records are written (one
    object) before returning; if that write fails, the exception propagates and Lambda retries
    the batch, which re-indexes idempotently.
    """
    decoded = [KinesisRecord.from_lambda(record) for record in records]
    quarantined: list[QuarantinedRecord] = []
    copies: dict[str, list[KinesisRecord]] = {}
    events = []
    for record in decoded:
        if record.decode_error is not None:
            quarantined.append(record.quarantined(record.decode_error))
            continue
        try:
            event = parse_event(record.data)
        except InvalidEvent as invalid:
            quarantined.append(record.quarantined(invalid.reason))
            continue
        if event.event_id not in copies:
            copies[event.event_id] = []
            events.append(event)
        copies[event.event_id].append(record)

    indexed = duplicates = 0
    failed: set[str] = set()
    search_error: str | None = None
    for chunk in chunk_actions(bulk_actions(events, prefix), max_docs, max_bytes):
        results: list[ItemResult | None] = [None] * len(chunk)
        if search_error is None:
            try:
                results = list(index.bulk(chunk))
            except SearchIndexError as error:
                search_error = str(error)
        for action, result in zip(chunk, results, strict=True):
            same_event = copies[action["_id"]]
            if result is None or not (result.ok or _is_permanent(result)):
                failed.update(record.sequence_number for record in same_event)
            elif result.ok:
                indexed += 1
                duplicates += len(same_event) - 1
            else:
                reason = f"rejected by OpenSearch: {error_reason(result.status, result.error)}"
                quarantined.extend(record.quarantined(reason) for record in same_event)

    if quarantined:
        positions = {record.sequence_number: i for i, record in enumerate(decoded)}
        quarantined.sort(key=lambda record: positions[record.sequence_number])
        quarantine.put(quarantined)
    return BatchOutcome(
        indexed=indexed,
        quarantined=len(quarantined),
        duplicates_in_batch=duplicates,
        failed_sequence_numbers=[r.sequence_number for r in decoded if r.sequence_number in failed],
        search_error=search_error,
    )


def _is_permanent(result: ItemResult) -> bool:
    return not result.ok and classify_item_error(result.status, result.error) == "permanent"
