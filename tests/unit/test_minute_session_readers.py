"""The read side's readers of ``aggregated/``: rows read as the sessionizer writes them."""

from __future__ import annotations

import io
from typing import Any

import pytest

from clickstream.core.events import InvalidEvent
from clickstream.core.sessions import minute_sessions
from clickstream_analytics.lake import count_layer, text_lines
from clickstream_analytics.reconcile import read_minute_sessions
from clickstream_glue.records import minute_session_row
from tests.factories import at, make_event
from tests.support.text_values import HOSTILE_URLS


class MemoryS3:
    """``list_objects_v2`` pages and ``get_object`` over objects of one bucket, in memory."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get_paginator(self, name: str) -> MemoryS3:
        assert name == "list_objects_v2"
        return self

    def paginate(self, Bucket: str, Prefix: str) -> list[dict[str, Any]]:
        keys = sorted(key for key in self.objects if key.startswith(Prefix))
        return [{"Contents": [{"Key": key} for key in keys]}]

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        return {"Body": io.BytesIO(self.objects[Key])}


def hostile_lines() -> tuple[list[tuple[str, ...]], bytes]:
    """One per-minute row per hostile url: the rows as strings, and their CSV lines."""
    sessions = [
        session
        for index, url in enumerate(HOSTILE_URLS)
        for session in minute_sessions(
            [make_event(at("2026-03-07T14:04:05"), custid=index + 1, url=url)]
        )
    ]
    rows = [tuple(str(value) for value in session.row()) for session in sessions]
    return rows, "".join(session.to_csv_line() for session in sessions).encode("utf-8")


def test_minute_sessions_reader_keeps_hostile_urls_in_their_rows() -> None:
    # GIVEN an aggregated object of rows whose urls hold quotes, commas, U+2028 and U+0085
    rows, body = hostile_lines()
    s3 = MemoryS3({"aggregated/2026/03/07/14/a": body})
    # WHEN read back THEN each row is exactly what was written, none split at a unicode break
    assert read_minute_sessions(s3, "raw") == sorted(rows, key=lambda row: int(row[1]))


def test_minute_sessions_reader_names_the_line_it_cannot_read() -> None:
    # GIVEN a line with a bare quote after a good one
    _, body = hostile_lines()
    s3 = MemoryS3({"aggregated/x": body + b'1_bro_1,1,browser,a"b\n'})
    # WHEN read THEN the error names the object, the line and the problem
    with pytest.raises(InvalidEvent) as refused:
        read_minute_sessions(s3, "raw")
    assert refused.value.reason == (
        f"s3://raw/aggregated/x:{len(HOSTILE_URLS) + 1}:"
        " CSV: quote inside an unquoted field at character 20"
    )


def test_lines_split_as_sparks_text_reader_splits_them() -> None:
    assert text_lines("a\r\nb\rc\u2028d\x85e\n\nf") == ["a", "b", "c\u2028d\x85e", "", "f"]
    assert text_lines("a\n") == ["a"] and text_lines("") == []


def test_lake_count_reads_every_hostile_row_as_one_valid_line() -> None:
    # GIVEN the hostile rows in one aggregated object
    rows, body = hostile_lines()
    s3 = MemoryS3({"aggregated/2026/03/07/14/a": body})
    # WHEN counted with the job's parser THEN one valid line per row, none rejected
    counted = count_layer(s3, "raw", "aggregated/", minute_session_row, lambda row: row[4])
    assert (counted.lines, counted.rejected) == (len(rows), 0)
    assert sorted(counted.keys) == sorted(row[0] for row in rows)
