"""Search: clickstream events as OpenSearch documents, and the Kinesis -> OpenSearch indexer.

``documents`` holds the pure rules (template, daily index, bulk actions, error classes);
``indexer`` the ports, their opensearch-py and S3 adapters, and :func:`index_batch`.
"""

from clickstream.search.documents import (
    ALIAS,
    INDEX_PATTERN,
    INDEX_PREFIX,
    MAX_BULK_BYTES,
    MAX_BULK_DOCS,
    TEMPLATE_NAME,
    bulk_actions,
    chunk_actions,
    classify_item_error,
    document,
    index_name,
    index_pattern,
    index_template,
)

__all__ = [
    "ALIAS",
    "INDEX_PATTERN",
    "INDEX_PREFIX",
    "MAX_BULK_BYTES",
    "MAX_BULK_DOCS",
    "TEMPLATE_NAME",
    "bulk_actions",
    "chunk_actions",
    "classify_item_error",
    "document",
    "index_name",
    "index_pattern",
    "index_template",
]
