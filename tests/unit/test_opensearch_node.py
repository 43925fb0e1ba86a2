"""The OpenSearch node's own folder: its JVM options, and the indices a stack keeps."""

from __future__ import annotations

from pathlib import Path

from clickstream_local.opensearch import node_jvm_options, restore_indices, save_indices

DISTRIBUTION_OPTIONS = """\
-Xms1g
-Xmx1g
-Djava.io.tmpdir=${OPENSEARCH_TMPDIR}
-XX:+HeapDumpOnOutOfMemoryError
-XX:HeapDumpPath=data
-XX:ErrorFile=logs/hs_err_pid%p.log
9-:-Xlog:gc*,gc+age=trace,safepoint:file=logs/gc.log:utctime,pid,tags:filecount=32,filesize=64m
"""


def test_the_jvm_writes_its_logs_and_heap_dumps_into_the_node_folder() -> None:
    # GIVEN the distribution's options, whose paths are relative to the working folder
    folder = Path("/tmp/clickstream-search-abc")
    # WHEN they are rewritten for a node folder
    options = node_jvm_options(DISTRIBUTION_OPTIONS, folder).splitlines()
    # THEN every path names the node folder, and every other option is unchanged
    assert options == [
        "-Xms1g",
        "-Xmx1g",
        "-Djava.io.tmpdir=${OPENSEARCH_TMPDIR}",
        "-XX:+HeapDumpOnOutOfMemoryError",
        "-XX:HeapDumpPath=/tmp/clickstream-search-abc/data",
        "-XX:ErrorFile=/tmp/clickstream-search-abc/logs/hs_err_pid%p.log",
        "9-:-Xlog:gc*,gc+age=trace,safepoint:file=/tmp/clickstream-search-abc/logs/gc.log"
        ":utctime,pid,tags:filecount=32,filesize=64m",
    ]


def test_saved_indices_replace_the_previous_copy_and_restore_into_a_new_folder(
    tmp_path: Path,
) -> None:
    # GIVEN a stopped node's folder with indices, and an older saved copy
    node = tmp_path / "node"
    (node / "data" / "nodes" / "0").mkdir(parents=True)
    (node / "data" / "nodes" / "0" / "segment").write_bytes(b"new")
    (node / "logs").mkdir()
    saved = tmp_path / "state" / "opensearch"
    (saved / "data").mkdir(parents=True)
    (saved / "data" / "stale").write_bytes(b"old")
    # WHEN the indices are saved, then restored into a new node folder
    save_indices(node, saved)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    restore_indices(saved, fresh)
    # THEN the saved copy is exactly the node's data, and so is the new folder's
    assert sorted(p.relative_to(saved).as_posix() for p in saved.rglob("*")) == [
        "data",
        "data/nodes",
        "data/nodes/0",
        "data/nodes/0/segment",
    ]
    assert (fresh / "data" / "nodes" / "0" / "segment").read_bytes() == b"new"


def test_a_node_folder_without_indices_leaves_the_saved_copy_alone(tmp_path: Path) -> None:
    # GIVEN a saved copy, and a node folder that holds no data (its node never started)
    saved = tmp_path / "opensearch"
    (saved / "data").mkdir(parents=True)
    (saved / "data" / "segment").write_bytes(b"kept")
    empty = tmp_path / "node"
    empty.mkdir()
    # WHEN that folder is saved, and restored from a state folder that has no copy
    save_indices(empty, saved)
    restore_indices(tmp_path / "nothing-saved", empty)
    # THEN the saved copy is unchanged, and the node folder still holds nothing
    assert (saved / "data" / "segment").read_bytes() == b"kept"
    assert list(empty.iterdir()) == []
