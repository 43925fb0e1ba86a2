"""Glue-style ``--NAME value`` job arguments, the same on AWS Glue and locally.

On Glue, ``awsglue.utils.getResolvedOptions`` reads them; elsewhere an equivalent parser does.
Glue passes its own arguments too (``--JOB_ID``, ``--job-bookmark-option`` ...), which are ignored
unless asked for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

GLUE_RUN_ARGUMENTS = ("JOB_ID", "JOB_RUN_ID", "SECURITY_CONFIGURATION")
"""Names ``getResolvedOptions`` always parses itself: asking for one again is an argparse
conflict, so they are read from its result instead."""


class MissingArgument(ValueError):
    """A required ``--NAME`` is not on the command line."""


def resolve_options(
    argv: Sequence[str], required: Sequence[str], defaults: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The values of ``required`` names, plus ``defaults`` for optional names not given."""
    defaults = dict(defaults or {})
    given = [name for name in defaults if _present(argv, name)]
    names = [*required, *given]
    try:
        from awsglue.utils import getResolvedOptions
    except ImportError:
        resolved = _parse(argv, names)
    else:
        asked = [name for name in names if name not in GLUE_RUN_ARGUMENTS]
        resolved = getResolvedOptions(list(argv), asked)
    return {**defaults, **{name: resolved[name] for name in names}}


def _present(argv: Sequence[str], name: str) -> bool:
    return any(token == f"--{name}" or token.startswith(f"--{name}=") for token in argv)


def _parse(argv: Sequence[str], names: Sequence[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for index, token in enumerate(argv):
        if token.startswith("--") and "=" in token:
            name, value = token[2:].split("=", 1)
            values[name] = value
        elif (
            token.startswith("--")
            and index + 1 < len(argv)
            and not argv[index + 1].startswith("--")
        ):
            values[token[2:]] = argv[index + 1]
    missing = [name for name in names if name not in values]
    if missing:
        raise MissingArgument(f"missing job argument(s): {', '.join('--' + n for n in missing)}")
    return {name: values[name] for name in names}
