"""How a setting's value reads in a message (``--threads: default -> 1``)."""

from __future__ import annotations

from typing import Any

#: longest value shown in full
SHOWN_CHARS = 40


def setting_text(value: Any, *, unset: str = "default") -> str:
    """``value`` as a user typed or reads it: ``unset`` for None, ``on``/``off`` for
    booleans, lists joined by commas, long text cut at :data:`SHOWN_CHARS` characters."""
    if value is None:
        return unset
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    text = str(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"
