"""Text values that are valid in an event but hard on every layer that carries them.

None holds a control character (U+0000 to U+001F, U+007F), which the event parser refuses; each
holds something a CSV writer, a SerDe or a line splitter could get wrong.
"""

from __future__ import annotations

HOSTILE_URLS: tuple[str, ...] = (
    "beer,cart",
    'say "hi"',
    '"',
    '""',
    '","',
    'ends with a quote"',
    "back\\slash",
    "\\",
    '\\"',
    "escaped \\, comma",
    "it's",
    "semi;colon",
    " leading and trailing spaces ",
    "ação, crème brûlée",
    "啤酒购物车",
    "🍺🛒 emoji",
    "עגלת קניות",
    "سلة التسوق",
    "line\u2028separator and next\u0085line",
    "soft\u00adhyphen, no-break\u00a0space, zero\u200bwidth",
    "\ufeffbyte order mark",
    "NULL",
    "\\N",
)
"""Urls (1 to 256 characters, not blank) for per-minute sessions."""
