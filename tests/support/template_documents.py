"""Readers of a template as a plain document: its resources by type, one-or-many fields."""

from __future__ import annotations

from typing import Any


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """Resources of one type, by logical id."""
    return {
        logical_id: spec
        for logical_id, spec in template["Resources"].items()
        if spec["Type"] == kind
    }


def as_list(value: Any) -> list[Any]:
    """A policy field that may be one value or a list, as a list."""
    return value if isinstance(value, list) else [value]
