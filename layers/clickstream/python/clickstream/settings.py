"""Reading Lambda settings from the environment, shared by the consumers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta


def required(env: Mapping[str, str], name: str) -> str:
    """The non-empty value of ``name``; a ValueError naming it when missing."""
    value = env.get(name, "").strip()
    if not value:
        raise ValueError(f"{name} is not set")
    return value


def seconds(env: Mapping[str, str], name: str, default: float) -> timedelta:
    """A duration given in seconds by ``name``, or ``default`` seconds."""
    return timedelta(seconds=float(env.get(name, str(default))))
