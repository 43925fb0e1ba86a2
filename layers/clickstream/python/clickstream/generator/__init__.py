"""Synthetic clickstream: deterministic event profiles and a retrying stream producer."""

from clickstream.generator.config import (
    MODES,
    GeneratorConfig,
    count_mode_events,
    run_generator,
    seed_from_time,
)
from clickstream.generator.producer import (
    PutResult,
    SendReport,
    chunk_records,
    event_record,
    is_retryable,
    pack_events,
    pack_records,
    packed_windows,
    put_with_retry,
    send_events,
    send_records,
)
from clickstream.generator.profiles import (
    PROFILES,
    expected_events_per_session,
    generate,
    human_checkout_probability,
)

__all__ = [
    "MODES",
    "PROFILES",
    "GeneratorConfig",
    "PutResult",
    "SendReport",
    "chunk_records",
    "count_mode_events",
    "event_record",
    "expected_events_per_session",
    "generate",
    "human_checkout_probability",
    "is_retryable",
    "pack_events",
    "pack_records",
    "packed_windows",
    "put_with_retry",
    "run_generator",
    "seed_from_time",
    "send_events",
    "send_records",
]
