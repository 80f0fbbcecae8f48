"""The article's text in a small Streamlit component that returns the words a person selects:
``{"start", "end", "text"}`` with character offsets into exactly the text given (code points,
as Python slices), or ``None`` until the person chooses "Use the selected words"."""

from __future__ import annotations

from pathlib import Path

import streamlit.components.v1 as components

_component = components.declare_component("select_span", path=str(Path(__file__).parent / "components" / "select_span"))


def select_span(text: str, key: str) -> dict | None:
    value = _component(text=text, key=key, default=None)
    if not isinstance(value, dict):
        return None
    try:
        start, end = int(value["start"]), int(value["end"])
    except (KeyError, TypeError, ValueError):
        return None
    if not (0 <= start < end <= len(text)):
        return None
    return {"start": start, "end": end, "text": text[start:end]}
