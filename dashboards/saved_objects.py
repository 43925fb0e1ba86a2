"""The OpenSearch Dashboards saved objects in ``clickstream.ndjson``: load, look up, translate.

No client and no network: parse the NDJSON export, list objects by type, resolve references
(``references`` + ``…RefName`` attributes, as Dashboards 2.x exports them) and turn a
visualization's ``visState`` into the search request Dashboards sends for it, so the numbers a
panel draws can be checked against a real OpenSearch node.

The translation covers what this dashboard uses, the way Dashboards builds it: ``count`` and
``cardinality`` metrics, ``date_histogram`` and ``terms`` buckets nested in ``aggs`` order with
the metrics in the innermost bucket, a ``json`` ("Advanced → JSON input") parameter merged into
its aggregation, and the saved search source (Lucene query string, phrase/range filters, negated
filters). Anything else raises :class:`UnsupportedVisualization` rather than guessing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

NDJSON_PATH = Path(__file__).with_name("clickstream.ndjson")
"""The dashboard's saved objects, one JSON object per line (``_import`` accepts it as is)."""

METRIC_TYPES: frozenset[str] = frozenset({"count", "cardinality"})
BUCKET_TYPES: frozenset[str] = frozenset({"date_histogram", "terms"})

_INTERVAL = re.compile(r"(?P<value>[1-9][0-9]*)?(?P<unit>ms|s|m|h|d|w|M|q|y)")
_CALENDAR_UNITS = frozenset({"m", "h", "d", "w", "M", "q", "y"})
"""Units Dashboards sends as ``calendar_interval`` when the value is 1 (``1m``, ``1h``, …)."""
_CALENDAR_ONLY_UNITS = frozenset({"w", "M", "q", "y"})


class SavedObjectError(ValueError):
    """The saved objects are malformed or a reference does not resolve."""


class UnsupportedVisualization(SavedObjectError):
    """A visualization uses something this translation does not cover."""


@dataclass(frozen=True, slots=True)
class Reference:
    """One entry of a saved object's ``references``."""

    name: str
    type: str
    id: str


@dataclass(frozen=True, slots=True)
class SavedObject:
    """One saved object: ``type``, ``id``, ``attributes`` and ``references``."""

    type: str
    id: str
    attributes: dict[str, Any]
    references: tuple[Reference, ...]

    @property
    def title(self) -> str:
        """The object's title (an index pattern's title is its pattern)."""
        return str(self.attributes.get("title", ""))

    def reference(self, name: str) -> Reference:
        """The reference called ``name``; raises :class:`SavedObjectError` if there is none."""
        for reference in self.references:
            if reference.name == name:
                return reference
        raise SavedObjectError(f"{self.type} {self.id!r} has no reference named {name!r}")


@dataclass(frozen=True, slots=True)
class Panel:
    """One dashboard panel: its index, grid position and the object it shows."""

    panel_index: str
    grid: dict[str, int]
    target: SavedObject


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """What a visualization asks OpenSearch: the index (pattern) and the ``_search`` body."""

    index: str
    body: dict[str, Any]


# --- loading and looking up ------------------------------------------------------------------


def parse_ndjson(text: str) -> list[SavedObject]:
    """Parse an export: one object per non-blank line, each with ``id``, ``type`` and attributes.

    The trailing export summary line (``{"exportedCount": …}``) is skipped, as import does.
    """
    objects: list[SavedObject] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as error:
            raise SavedObjectError(f"line {number}: not JSON ({error.msg})") from None
        if isinstance(raw, dict) and "exportedCount" in raw:
            continue
        objects.append(_saved_object(raw, number))
    return objects


def load(path: Path = NDJSON_PATH) -> list[SavedObject]:
    """Parse the NDJSON file at ``path`` (the dashboard's export by default)."""
    return parse_ndjson(path.read_text(encoding="utf-8"))


def of_type(objects: Iterable[SavedObject], type_: str) -> list[SavedObject]:
    """The objects of one type, in file order."""
    return [obj for obj in objects if obj.type == type_]


def find(objects: Iterable[SavedObject], type_: str, id_: str) -> SavedObject:
    """The object with this type and id; raises :class:`SavedObjectError` if it is missing."""
    for obj in objects:
        if obj.type == type_ and obj.id == id_:
            return obj
    raise SavedObjectError(f"no {type_} with id {id_!r}")


def find_by_title(objects: Iterable[SavedObject], type_: str, title: str) -> SavedObject:
    """The object of this type with this title."""
    for obj in objects:
        if obj.type == type_ and obj.title == title:
            return obj
    raise SavedObjectError(f"no {type_} titled {title!r}")


def resolve(objects: Sequence[SavedObject], obj: SavedObject, name: str) -> SavedObject:
    """The object that ``obj``'s reference ``name`` points to."""
    reference = obj.reference(name)
    return find(objects, reference.type, reference.id)


def dangling_references(objects: Sequence[SavedObject]) -> list[tuple[SavedObject, Reference]]:
    """Every reference whose target is not among ``objects`` (empty when all resolve)."""
    present = {(obj.type, obj.id) for obj in objects}
    return [
        (obj, reference)
        for obj in objects
        for reference in obj.references
        if (reference.type, reference.id) not in present
    ]


def search_source(obj: SavedObject) -> dict[str, Any]:
    """The parsed ``kibanaSavedObjectMeta.searchSourceJSON`` (``{}`` when absent)."""
    meta = obj.attributes.get("kibanaSavedObjectMeta") or {}
    return _json_attribute(obj, meta.get("searchSourceJSON") or "{}", "searchSourceJSON")


def vis_state(obj: SavedObject) -> dict[str, Any]:
    """The parsed ``visState`` of a visualization."""
    if obj.type != "visualization":
        raise SavedObjectError(f"{obj.type} {obj.id!r} is not a visualization")
    return _json_attribute(obj, obj.attributes.get("visState", ""), "visState")


def index_pattern_of(objects: Sequence[SavedObject], obj: SavedObject) -> SavedObject:
    """The index pattern a visualization or search reads, via ``searchSourceJSON.indexRefName``."""
    name = search_source(obj).get("indexRefName")
    if not name:
        raise SavedObjectError(f"{obj.type} {obj.id!r} has no indexRefName in its search source")
    pattern = resolve(objects, obj, name)
    if pattern.type != "index-pattern":
        raise SavedObjectError(
            f"{obj.id!r}: {name} points to a {pattern.type}, not an index pattern"
        )
    return pattern


def filter_index_patterns(objects: Sequence[SavedObject], obj: SavedObject) -> list[SavedObject]:
    """The index pattern of each filter in the search source (``meta.indexRefName``)."""
    return [
        resolve(objects, obj, item["meta"]["indexRefName"])
        for item in search_source(obj).get("filter", [])
        if item.get("meta", {}).get("indexRefName")
    ]


def dashboard_panels(objects: Sequence[SavedObject], dashboard: SavedObject) -> list[Panel]:
    """The dashboard's panels, each resolved through its ``panelRefName``."""
    if dashboard.type != "dashboard":
        raise SavedObjectError(f"{dashboard.type} {dashboard.id!r} is not a dashboard")
    panels = _json_attribute(dashboard, dashboard.attributes.get("panelsJSON", ""), "panelsJSON")
    if not isinstance(panels, list):
        raise SavedObjectError(f"dashboard {dashboard.id!r}: panelsJSON is not a list")
    resolved = []
    for panel in panels:
        name = panel.get("panelRefName")
        if not name:
            raise SavedObjectError(f"dashboard {dashboard.id!r}: a panel has no panelRefName")
        resolved.append(
            Panel(
                panel_index=str(panel.get("panelIndex", "")),
                grid=dict(panel.get("gridData", {})),
                target=resolve(objects, dashboard, name),
            )
        )
    return resolved


def fields_used(obj: SavedObject) -> set[str]:
    """Every document field a visualization aggregates on or filters by."""
    fields = {
        str(agg["params"]["field"])
        for agg in _enabled_aggs(vis_state(obj))
        if agg.get("params", {}).get("field")
    }
    for item in search_source(obj).get("filter", []):
        key = item.get("meta", {}).get("key")
        if key:
            fields.add(str(key))
        clause = _filter_clause(item)
        for query in clause.values():
            if isinstance(query, dict):
                fields.update(str(name) for name in query)
    return fields


# --- translation to a search request ---------------------------------------------------------


def search_request(
    objects: Sequence[SavedObject],
    obj: SavedObject,
    *,
    index: str | None = None,
    time_range: tuple[datetime, datetime] | None = None,
    time_zone: str = "UTC",
) -> SearchRequest:
    """The request the visualization implies, on its index pattern or on ``index`` instead.

    ``time_range`` plays the time picker: a ``range`` filter on the pattern's time field.
    """
    pattern = index_pattern_of(objects, obj)
    time_field = pattern.attributes.get("timeFieldName") or None
    body = aggregation_request(
        obj, time_field=time_field, time_range=time_range, time_zone=time_zone
    )
    return SearchRequest(index=index or pattern.title, body=body)


def aggregation_request(
    obj: SavedObject,
    *,
    time_field: str | None = None,
    time_range: tuple[datetime, datetime] | None = None,
    time_zone: str = "UTC",
) -> dict[str, Any]:
    """The ``_search`` body of a visualization: ``size`` 0, its query and its aggregations."""
    if time_range is not None and time_field is None:
        raise SavedObjectError("a time range needs the index pattern's time field")
    aggs = _aggregations(_enabled_aggs(vis_state(obj)), time_zone)
    return {
        "size": 0,
        "query": _query(search_source(obj), time_field, time_range),
        "aggs": aggs,
    }


def tabify(obj: SavedObject, response: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The response as rows: the bucket keys (outer to inner), then each metric, in aggs order.

    Rows follow the order OpenSearch returned the buckets in; ``count`` is the ``doc_count``.
    """
    aggs = _enabled_aggs(vis_state(obj))
    buckets = [agg for agg in aggs if agg["type"] in BUCKET_TYPES]
    metrics = [agg for agg in aggs if agg["type"] in METRIC_TYPES]
    root = dict(response.get("aggregations") or {})
    root["doc_count"] = response.get("hits", {}).get("total", {}).get("value")
    return list(_rows(root, buckets, metrics, ()))


def _rows(
    node: dict[str, Any],
    buckets: list[dict[str, Any]],
    metrics: list[dict[str, Any]],
    keys: tuple[Any, ...],
) -> Iterator[tuple[Any, ...]]:
    if not buckets:
        yield keys + tuple(_metric_value(metric, node) for metric in metrics)
        return
    head, rest = buckets[0], buckets[1:]
    for bucket in node[head["id"]]["buckets"]:
        yield from _rows(bucket, rest, metrics, (*keys, bucket["key"]))


def _metric_value(metric: dict[str, Any], node: dict[str, Any]) -> Any:
    if metric["type"] == "count":
        return node["doc_count"]
    return node[metric["id"]]["value"]


def _enabled_aggs(state: dict[str, Any]) -> list[dict[str, Any]]:
    aggs = [agg for agg in state.get("aggs", []) if agg.get("enabled", True)]
    for agg in aggs:
        if agg.get("type") not in METRIC_TYPES | BUCKET_TYPES:
            raise UnsupportedVisualization(f"aggregation type {agg.get('type')!r}")
    return aggs


def _aggregations(aggs: list[dict[str, Any]], time_zone: str) -> dict[str, Any]:
    """Buckets nested in ``aggs`` order; the (non-count) metrics inside the innermost one."""
    metrics = {agg["id"]: agg for agg in aggs if agg["type"] in METRIC_TYPES}
    inner = {
        agg_id: {"cardinality": _cardinality(agg)}
        for agg_id, agg in metrics.items()
        if agg["type"] != "count"
    }
    for bucket in reversed([agg for agg in aggs if agg["type"] in BUCKET_TYPES]):
        if bucket["type"] == "terms":
            body, order_aggs = _terms(bucket, metrics)
        else:
            body, order_aggs = _date_histogram(bucket, time_zone), {}
        node: dict[str, Any] = {bucket["type"]: body}
        children = {**order_aggs, **inner}
        if children:
            node["aggs"] = children
        inner = {bucket["id"]: node}
    return inner


def _cardinality(agg: dict[str, Any]) -> dict[str, Any]:
    return _with_json({"field": _field(agg)}, agg)


def _terms(
    agg: dict[str, Any], metrics: dict[str, dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    params = agg.get("params", {})
    if params.get("otherBucket") or params.get("missingBucket"):
        raise UnsupportedVisualization(f"terms {agg['id']!r}: other/missing buckets")
    direction = params.get("order", "desc")
    order_by = str(params.get("orderBy", "_key"))
    order_aggs: dict[str, Any] = {}
    if order_by == "_key":
        order = {"_key": direction}
    elif order_by in metrics and metrics[order_by]["type"] == "count":
        order = {"_count": direction}
    elif order_by in metrics:
        order = {order_by: direction}
        order_aggs[order_by] = {"cardinality": _cardinality(metrics[order_by])}
    else:
        raise UnsupportedVisualization(f"terms {agg['id']!r}: orderBy {order_by!r}")
    body = {"field": _field(agg), "size": int(params.get("size", 5)), "order": order}
    return _with_json(body, agg), order_aggs


def _date_histogram(agg: dict[str, Any], time_zone: str) -> dict[str, Any]:
    params = agg.get("params", {})
    interval = str(params.get("interval", "auto"))
    if interval == "custom":
        interval = str(params.get("customInterval", ""))
    body = {
        "field": _field(agg),
        **_interval(interval),
        "time_zone": time_zone,
        "min_doc_count": int(params.get("min_doc_count", 1)),
    }
    bounds = params.get("extended_bounds") or {}
    if bounds.get("min") is not None or bounds.get("max") is not None:
        body["extended_bounds"] = {"min": bounds.get("min"), "max": bounds.get("max")}
    return _with_json(body, agg)


def _interval(text: str) -> dict[str, str]:
    """``m`` or ``1m`` → ``calendar_interval: 1m``; ``30s``, ``5m`` → ``fixed_interval``."""
    match = _INTERVAL.fullmatch(text)
    if match is None:
        raise UnsupportedVisualization(
            f"date_histogram interval {text!r}: 'auto' depends on the time picker, "
            "save a fixed interval such as 'm' or '5m'"
        )
    value, unit = int(match["value"] or 1), match["unit"]
    if value == 1 and unit in _CALENDAR_UNITS:
        return {"calendar_interval": f"1{unit}"}
    if unit in _CALENDAR_ONLY_UNITS:
        raise UnsupportedVisualization(f"interval {text!r}: {unit} only exists as a single unit")
    return {"fixed_interval": f"{value}{unit}"}


def _field(agg: dict[str, Any]) -> str:
    field = agg.get("params", {}).get("field")
    if not field:
        raise SavedObjectError(f"{agg['type']} aggregation {agg['id']!r} has no field")
    return str(field)


def _with_json(body: dict[str, Any], agg: dict[str, Any]) -> dict[str, Any]:
    """Merge the agg's ``json`` parameter (Advanced → JSON input) into its body."""
    text = agg.get("params", {}).get("json")
    if not text:
        return body
    try:
        extra = json.loads(text)
    except json.JSONDecodeError as error:
        raise SavedObjectError(f"aggregation {agg['id']!r}: json input: {error.msg}") from None
    if not isinstance(extra, dict):
        raise SavedObjectError(f"aggregation {agg['id']!r}: json input is not an object")
    return {**body, **extra}


def _query(
    source: dict[str, Any],
    time_field: str | None,
    time_range: tuple[datetime, datetime] | None,
) -> dict[str, Any]:
    must: list[dict[str, Any]] = []
    filters: list[dict[str, Any]] = []
    must_not: list[dict[str, Any]] = []
    query = source.get("query") or {}
    text = query.get("query", "")
    if not isinstance(text, str):
        raise UnsupportedVisualization("a query saved as DSL instead of a query string")
    if text.strip():
        if query.get("language", "kuery") != "lucene":
            raise UnsupportedVisualization(f"DQL/KQL query {text!r}: save it as a filter")
        must.append({"query_string": {"query": text, "analyze_wildcard": True}})
    for item in source.get("filter", []):
        meta = item.get("meta", {})
        if meta.get("disabled"):
            continue
        (must_not if meta.get("negate") else filters).append(_filter_clause(item))
    if time_range is not None and time_field is not None:
        start, end = time_range
        filters.append(
            {
                "range": {
                    time_field: {
                        "gte": _iso(start),
                        "lte": _iso(end),
                        "format": "strict_date_optional_time",
                    }
                }
            }
        )
    if not (must or filters or must_not):
        return {"match_all": {}}
    return {"bool": {"must": must, "filter": filters, "should": [], "must_not": must_not}}


def _filter_clause(item: dict[str, Any]) -> dict[str, Any]:
    """A filter pill as query DSL: its ``query`` (phrase filters) or the rest of it (range…)."""
    if "query" in item:
        return dict(item["query"])
    return {key: value for key, value in item.items() if key not in ("meta", "$state")}


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise SavedObjectError(f"time range bound {moment.isoformat()} must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _saved_object(raw: Any, number: int) -> SavedObject:
    if not isinstance(raw, dict):
        raise SavedObjectError(f"line {number}: expected a JSON object")
    for key in ("id", "type"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise SavedObjectError(f"line {number}: missing or empty {key!r}")
    if not isinstance(raw.get("attributes"), dict):
        raise SavedObjectError(f"line {number}: missing 'attributes' object")
    references = []
    for item in raw.get("references", []):
        if not all(isinstance(item.get(key), str) for key in ("name", "type", "id")):
            raise SavedObjectError(f"line {number}: a reference lacks name, type or id")
        references.append(Reference(name=item["name"], type=item["type"], id=item["id"]))
    return SavedObject(
        type=raw["type"],
        id=raw["id"],
        attributes=raw["attributes"],
        references=tuple(references),
    )


def _json_attribute(obj: SavedObject, text: Any, name: str) -> Any:
    if not isinstance(text, str):
        raise SavedObjectError(f"{obj.type} {obj.id!r}: {name} is not a JSON string")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise SavedObjectError(f"{obj.type} {obj.id!r}: {name} is not JSON ({error.msg})") from None
