"""Inline templates for the template reader's tests, written to a folder and bound to ``demo``."""

from __future__ import annotations

import textwrap
from pathlib import Path

from clickstream_local.cfn import Template


def write_template(tmp_path: Path, text: str) -> Path:
    """Write a template body (dedented) to ``tmp_path`` and return its path."""
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, **overrides: str) -> Template:
    """Load an inline template bound to the stack ``demo``."""
    return Template.load(
        write_template(tmp_path, text), stack_name="demo", parameter_overrides=overrides
    )
