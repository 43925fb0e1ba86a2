"""The OpenSearch Dashboards saved objects (dashboards/clickstream.ndjson) and their translation."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from clickstream.core.search_documents import INDEX_PATTERN, index_template
from clickstream.generator.profiles import PRODUCT_COUNT
from dashboards.saved_objects import (
    NDJSON_PATH,
    SavedObject,
    SavedObjectError,
    UnsupportedVisualization,
    aggregation_request,
    dangling_references,
    dashboard_panels,
    fields_used,
    filter_index_patterns,
    find,
    find_by_title,
    index_pattern_of,
    load,
    of_type,
    parse_ndjson,
    search_source,
    vis_state,
)

OBJECTS = load()
MAPPINGS: dict[str, dict[str, Any]] = index_template()["template"]["mappings"]["properties"]
VISUALIZATIONS = of_type(OBJECTS, "visualization")
UNIQUE_VISITORS = "Unique visitors over time"
TITLES = (UNIQUE_VISITORS, "Events by device", "Traffic source × page", "Top products")
OSD_TYPE = {"long": "number", "keyword": "string", "date": "date"}
"""Index pattern field type for each mapping type the template uses."""


def by_id(objects: list[SavedObject]) -> list[str]:
    return [obj.id for obj in objects]


def metrics(vis: SavedObject) -> list[dict[str, Any]]:
    return [agg for agg in vis_state(vis)["aggs"] if agg["schema"] == "metric"]


def buckets(vis: SavedObject) -> list[dict[str, Any]]:
    return [agg for agg in vis_state(vis)["aggs"] if agg["schema"] != "metric"]


# --- the file ---------------------------------------------------------------------------------


def test_every_line_is_a_json_object_with_id_type_and_attributes() -> None:
    # GIVEN the raw lines of the export
    lines = NDJSON_PATH.read_text(encoding="utf-8").splitlines()

    # WHEN each one is decoded
    decoded = [json.loads(line) for line in lines]

    # THEN each is one saved object with a non-empty id and type and an attributes object
    assert len(lines) == 6
    for raw in decoded:
        assert isinstance(raw["id"], str) and raw["id"]
        assert isinstance(raw["type"], str) and raw["type"]
        assert isinstance(raw["attributes"], dict)
        assert isinstance(raw["references"], list)
        assert raw["migrationVersion"], "without it import would rerun every migration"


def test_the_file_holds_one_index_pattern_four_visualizations_and_one_dashboard() -> None:
    # GIVEN / WHEN the parsed export
    # THEN the objects have the stable ids and titles the README documents
    assert by_id(of_type(OBJECTS, "index-pattern")) == ["clickstream-events"]
    assert by_id(VISUALIZATIONS) == [
        "clickstream-unique-visitors",
        "clickstream-events-by-device",
        "clickstream-traffic-source-by-page",
        "clickstream-top-products",
    ]
    assert [vis.title for vis in VISUALIZATIONS] == list(TITLES)
    assert by_id(of_type(OBJECTS, "dashboard")) == ["clickstream-overview"]
    assert find(OBJECTS, "dashboard", "clickstream-overview").title == "Clickstream overview"
    assert len({(obj.type, obj.id) for obj in OBJECTS}) == len(OBJECTS)


def test_every_reference_resolves_to_an_object_in_the_file() -> None:
    # GIVEN / WHEN the references of every object
    # THEN none points outside the file, so import needs nothing that is not in it
    assert dangling_references(OBJECTS) == []
    assert sum(len(obj.references) for obj in OBJECTS) == 9


def test_the_index_pattern_covers_the_daily_indices_on_the_event_time() -> None:
    # GIVEN the index pattern
    pattern = find(OBJECTS, "index-pattern", "clickstream-events")

    # WHEN / THEN it matches every daily index (not the alias) and its time field is @timestamp
    assert pattern.title == INDEX_PATTERN == "clickstream-events-*"
    assert pattern.attributes["timeFieldName"] == "@timestamp"
    assert "@timestamp" in MAPPINGS
    assert MAPPINGS["@timestamp"]["type"] == "date"


def test_the_index_pattern_fields_agree_with_the_template_mappings() -> None:
    # GIVEN the field list saved with the index pattern
    pattern = find(OBJECTS, "index-pattern", "clickstream-events")
    fields = {
        spec["name"]: spec
        for spec in json.loads(pattern.attributes["fields"])
        if not spec["name"].startswith("_")
    }

    # WHEN / THEN it lists exactly the mapped fields, each with the type its mapping implies
    assert set(fields) == set(MAPPINGS)
    for name, spec in fields.items():
        es_type = MAPPINGS[name]["type"]
        assert spec["esTypes"] == [es_type], name
        assert spec["type"] == OSD_TYPE[es_type], name
        assert spec["aggregatable"] and spec["searchable"] and spec["readFromDocValues"], name


# --- the visualizations ----------------------------------------------------------------------


@pytest.mark.parametrize("vis", VISUALIZATIONS, ids=lambda vis: vis.id)
def test_each_visualization_reads_the_index_pattern_through_its_references(
    vis: SavedObject,
) -> None:
    # GIVEN a visualization's search source
    source = search_source(vis)

    # WHEN its index pattern is resolved as Dashboards 2.x does (indexRefName + references)
    pattern = index_pattern_of(OBJECTS, vis)

    # THEN it is the clickstream pattern, named by reference and never inline
    assert source["indexRefName"] == "kibanaSavedObjectMeta.searchSourceJSON.index"
    assert "index" not in source
    assert pattern.id == "clickstream-events"
    assert all(p.id == "clickstream-events" for p in filter_index_patterns(OBJECTS, vis))
    assert vis_state(vis)["title"] == vis.title


@pytest.mark.parametrize("vis", VISUALIZATIONS, ids=lambda vis: vis.id)
def test_every_field_a_visualization_uses_is_mapped_by_the_index_template(
    vis: SavedObject,
) -> None:
    # GIVEN / WHEN the fields a visualization aggregates on or filters by
    used = fields_used(vis)

    # THEN each is a mapped field, so the template's strict mappings serve every panel
    assert used
    assert used <= set(MAPPINGS), used - set(MAPPINGS)


@pytest.mark.parametrize("vis", VISUALIZATIONS, ids=lambda vis: vis.id)
def test_aggregated_fields_have_a_type_their_aggregation_accepts(vis: SavedObject) -> None:
    # GIVEN / WHEN each aggregation on a field
    for agg in vis_state(vis)["aggs"]:
        field = agg["params"].get("field")
        if field is None:
            continue
        es_type = MAPPINGS[field]["type"]

        # THEN histograms run on dates, terms and unique counts on keywords or longs (not text)
        if agg["type"] == "date_histogram":
            assert es_type == "date", field
        else:
            assert es_type in ("keyword", "long"), field


def test_unique_visitors_is_a_unique_count_of_custid_per_minute_not_an_event_count() -> None:
    # GIVEN the unique visitors chart
    vis = find_by_title(OBJECTS, "visualization", UNIQUE_VISITORS)

    # WHEN its aggregations and the request they imply are read
    state = vis_state(vis)
    body = aggregation_request(vis)

    # THEN its only metric is cardinality on custid (no count), over minutes of @timestamp
    assert state["type"] == "line"
    assert [(agg["type"], agg["params"]["field"]) for agg in metrics(vis)] == [
        ("cardinality", "custid")
    ]
    assert [(agg["type"], agg["params"]["field"]) for agg in buckets(vis)] == [
        ("date_histogram", "@timestamp")
    ]
    assert json.loads(metrics(vis)[0]["params"]["json"]) == {"precision_threshold": 3000}
    assert body["aggs"] == {
        "2": {
            "date_histogram": {
                "field": "@timestamp",
                "calendar_interval": "1m",
                "time_zone": "UTC",
                "min_doc_count": 1,
            },
            "aggs": {"1": {"cardinality": {"field": "custid", "precision_threshold": 3000}}},
        }
    }


def test_events_by_device_is_a_pie_of_counts_split_by_device() -> None:
    # GIVEN the device pie
    vis = find_by_title(OBJECTS, "visualization", "Events by device")

    # WHEN its request is built
    body = aggregation_request(vis)

    # THEN it counts events per device term, largest first
    assert vis_state(vis)["type"] == "pie"
    assert [agg["type"] for agg in metrics(vis)] == ["count"]
    assert body["query"] == {"match_all": {}}
    assert body["aggs"] == {
        "2": {"terms": {"field": "device", "size": 5, "order": {"_count": "desc"}}}
    }


def test_the_heat_map_nests_pages_inside_traffic_sources() -> None:
    # GIVEN the traffic source × page heat map
    vis = find_by_title(OBJECTS, "visualization", "Traffic source × page")

    # WHEN its request is built
    body = aggregation_request(vis)

    # THEN trafficfrom is the x axis (outer terms) and url the y axis (inner terms), counted
    assert vis_state(vis)["type"] == "heatmap"
    assert [(agg["schema"], agg["params"]["field"]) for agg in buckets(vis)] == [
        ("segment", "trafficfrom"),
        ("group", "url"),
    ]
    outer = body["aggs"]["2"]
    assert outer["terms"]["field"] == "trafficfrom"
    assert outer["aggs"]["3"]["terms"]["field"] == "url"
    assert "aggs" not in outer["aggs"]["3"]


def test_top_products_counts_the_ten_most_touched_products_without_product_zero() -> None:
    # GIVEN the top products bar chart
    vis = find_by_title(OBJECTS, "visualization", "Top products")

    # WHEN its request is built
    body = aggregation_request(vis)

    # THEN a negated phrase filter drops touchproduct 0 and terms keeps the top 10 by count
    assert vis_state(vis)["type"] == "horizontal_bar"
    assert body["query"]["bool"]["must_not"] == [{"match_phrase": {"touchproduct": 0}}]
    assert body["query"]["bool"]["filter"] == []
    terms = body["aggs"]["2"]["terms"]
    assert {key: terms[key] for key in ("field", "size", "order")} == {
        "field": "touchproduct",
        "size": 10,
        "order": {"_count": "desc"},
    }
    # AND each daily index (shard) returns every product it holds, so the top 10 is exact
    assert terms["shard_size"] >= PRODUCT_COUNT


# --- the dashboard ---------------------------------------------------------------------------


def test_the_dashboard_shows_all_four_visualizations_on_a_non_overlapping_grid() -> None:
    # GIVEN the dashboard
    dashboard = find(OBJECTS, "dashboard", "clickstream-overview")

    # WHEN its panels are resolved through panelRefName
    panels = dashboard_panels(OBJECTS, dashboard)

    # THEN they show the four visualizations once each, inside 48 columns, without overlap
    assert sorted(panel.target.id for panel in panels) == sorted(by_id(VISUALIZATIONS))
    assert {ref.name for ref in dashboard.references} == {f"panel_{i}" for i in range(4)}
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel.grid
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 48
        assert grid["i"] == panel.panel_index
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not area & cells, f"panel {panel.panel_index} overlaps another"
        cells |= area
    top = min(panels, key=lambda panel: (panel.grid["y"], panel.grid["x"]))
    assert top.target.title == UNIQUE_VISITORS


def test_the_dashboard_restores_a_default_time_range_and_refreshes() -> None:
    # GIVEN / WHEN the dashboard's time settings
    attributes = find(OBJECTS, "dashboard", "clickstream-overview").attributes

    # THEN opening it selects the last hour and refreshes every 30 s
    assert attributes["timeRestore"] is True
    assert (attributes["timeFrom"], attributes["timeTo"]) == ("now-1h", "now")
    assert attributes["refreshInterval"] == {"pause": False, "value": 30000}


# --- the loader and the translation ----------------------------------------------------------


def test_a_malformed_line_is_reported_with_its_number() -> None:
    # GIVEN an export whose second line is cut
    text = '{"id":"a","type":"index-pattern","attributes":{}}\n{"id":"b",\n'

    # WHEN / THEN parsing names the line
    with pytest.raises(SavedObjectError, match="line 2: not JSON"):
        parse_ndjson(text)


def test_an_object_without_attributes_or_id_is_rejected() -> None:
    # GIVEN objects lacking attributes, then lacking an id
    # WHEN / THEN each is rejected with the line and what is missing
    with pytest.raises(SavedObjectError, match="line 1: missing 'attributes'"):
        parse_ndjson('{"id":"a","type":"dashboard"}')
    with pytest.raises(SavedObjectError, match="line 1: missing or empty 'id'"):
        parse_ndjson('{"type":"dashboard","attributes":{}}')


def test_the_export_summary_line_is_skipped_and_a_missing_target_is_dangling() -> None:
    # GIVEN a visualization whose index pattern is not in the file, and an export summary line
    text = (
        '{"id":"v","type":"visualization","attributes":{},'
        '"references":[{"name":"r","type":"index-pattern","id":"gone"}]}\n'
        '{"exportedCount":1,"missingRefCount":0,"missingReferences":[]}\n'
    )

    # WHEN it is parsed and its references checked
    objects = parse_ndjson(text)

    # THEN only the visualization is an object, and its reference is reported as dangling
    assert by_id(objects) == ["v"]
    assert [(obj.id, ref.id) for obj, ref in dangling_references(objects)] == [("v", "gone")]


def visualization(aggs: list[dict[str, Any]], source: dict[str, Any]) -> SavedObject:
    """A visualization built in memory from its aggs and search source."""
    return SavedObject(
        type="visualization",
        id="v",
        attributes={
            "title": "v",
            "visState": json.dumps({"title": "v", "type": "line", "aggs": aggs, "params": {}}),
            "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(source)},
        },
        references=(),
    )


def histogram(interval: str) -> dict[str, Any]:
    return {
        "id": "2",
        "enabled": True,
        "type": "date_histogram",
        "schema": "segment",
        "params": {"field": "@timestamp", "interval": interval},
    }


COUNT = {"id": "1", "enabled": True, "type": "count", "schema": "metric", "params": {}}


@pytest.mark.parametrize(
    ("interval", "expected"),
    [
        ("m", {"calendar_interval": "1m"}),
        ("1h", {"calendar_interval": "1h"}),
        ("30s", {"fixed_interval": "30s"}),
        ("5m", {"fixed_interval": "5m"}),
    ],
)
def test_intervals_translate_as_dashboards_sends_them(
    interval: str, expected: dict[str, str]
) -> None:
    # GIVEN a date histogram with a saved interval
    vis = visualization([COUNT, histogram(interval)], {})

    # WHEN it is translated
    body = aggregation_request(vis)["aggs"]["2"]["date_histogram"]

    # THEN single calendar units are calendar intervals, multiples are fixed ones
    assert {key: body[key] for key in expected} == expected


def test_an_auto_interval_or_a_kql_query_is_refused_rather_than_guessed() -> None:
    # GIVEN an auto interval (it depends on the time picker) and a non-empty KQL query
    auto = visualization([COUNT, histogram("auto")], {})
    kql = visualization([COUNT], {"query": {"query": "device:browser", "language": "kuery"}})

    # WHEN / THEN both are reported as unsupported
    with pytest.raises(UnsupportedVisualization, match="auto"):
        aggregation_request(auto)
    with pytest.raises(UnsupportedVisualization, match="KQL"):
        aggregation_request(kql)


def test_time_range_and_filters_become_a_bool_query() -> None:
    # GIVEN a Lucene query, an enabled filter, a disabled one and a time range
    enabled = {"meta": {"negate": False}, "query": {"match_phrase": {"device": "browser"}}}
    disabled = {"meta": {"disabled": True}, "query": {"match_phrase": {"url": "beer_cart"}}}
    source = {"query": {"query": "custid:7", "language": "lucene"}, "filter": [enabled, disabled]}
    vis = visualization([COUNT], source)
    start = datetime(2026, 3, 7, 23, 58, tzinfo=UTC)
    end = datetime(2026, 3, 8, 0, 2, tzinfo=UTC)

    # WHEN it is translated with the time range on @timestamp
    query = aggregation_request(vis, time_field="@timestamp", time_range=(start, end))["query"]

    # THEN the query string must match, the enabled filter and the range filter, nothing else
    assert query == {
        "bool": {
            "must": [{"query_string": {"query": "custid:7", "analyze_wildcard": True}}],
            "filter": [
                {"match_phrase": {"device": "browser"}},
                {
                    "range": {
                        "@timestamp": {
                            "gte": "2026-03-07T23:58:00.000Z",
                            "lte": "2026-03-08T00:02:00.000Z",
                            "format": "strict_date_optional_time",
                        }
                    }
                },
            ],
            "should": [],
            "must_not": [],
        }
    }
