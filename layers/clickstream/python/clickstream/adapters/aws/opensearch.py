"""The search index on OpenSearch, through opensearch-py: one ``_bulk`` request per call.

Whole requests that fail transiently (connection failures, timeouts, 429, 5xx) are retried with
exponential backoff and full jitter (:class:`~clickstream.core.retry.RetryPolicy`); then
:class:`~clickstream.ports.SearchUnavailable` is raised. Amazon OpenSearch Service is reached
with SigV4 signing (service ``es``), a local node without.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import boto3
from opensearchpy import OpenSearch, Urllib3AWSV4SignerAuth
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import SSLError, TransportError

from clickstream.core.retry import RetryPolicy
from clickstream.core.search_documents import INDEX_PREFIX, Action, bulk_body, index_template
from clickstream.ports import ItemResult, SearchIndex, SearchIndexError, SearchUnavailable

REQUEST_TIMEOUT_SECONDS = 15.0
SEARCH_RETRY_POLICY = RetryPolicy(max_attempts=5, base_delay=0.2, max_delay=4.0)
"""Whole-request retries: at most 5 attempts, about 3 s of backoff in the worst case."""

_T = TypeVar("_T")


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


def http_auth(
    auth: str, region: str | None, credentials: Any = None
) -> Urllib3AWSV4SignerAuth | None:
    """SigV4 signing (``auth="sigv4"``) for Amazon OpenSearch Service (service ``es``), or None
    for a local node (``auth="none"``)."""
    if auth == "none":
        return None
    credentials = credentials or boto3.Session().get_credentials()
    if credentials is None:
        raise ValueError("OPENSEARCH_AUTH=sigv4 but no AWS credentials were found")
    return Urllib3AWSV4SignerAuth(credentials, region, "es")


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
    def connect(
        cls,
        url: str,
        prefix: str = INDEX_PREFIX,
        *,
        auth: str,
        region: str | None,
        credentials: Any = None,
        **options: Any,
    ) -> OpenSearchIndex:
        """A client for ``url``, without connecting yet (its own retries off: ours apply)."""
        client = OpenSearch(
            hosts=[url],
            http_auth=http_auth(auth, region, credentials),
            timeout=REQUEST_TIMEOUT_SECONDS,
            max_retries=0,
            retry_on_timeout=False,
        )
        return cls(client, prefix, **options)

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
