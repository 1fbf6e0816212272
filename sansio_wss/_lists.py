"""HTTP list-valued fields (RFC 9110 section 5.6): elements cut outside quoted-strings, and
`name; param=value` elements (`Sec-WebSocket-Extensions`, `Forwarded`)."""

from __future__ import annotations

import re

__all__ = ["list_elements", "parse_element", "split_list", "unquote"]

_QUOTED_PAIR = re.compile(r"\\(.)")


def unquote(value: str) -> str:
    """A parameter value as meant: a quoted-string without its quotes and quoted-pairs."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return _QUOTED_PAIR.sub(r"\1", value[1:-1])
    return value


def split_list(text: str, separator: str) -> list[str] | None:
    """`text` cut at `separator` outside quoted-strings (RFC 9110 section 5.6); None when it is not
    a well-formed list: a quoted-string must be a whole parameter value, and end."""
    parts: list[str] = []
    start, quoted, escaped, closed, last = 0, False, False, False, ""
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif quoted:
            if char == "\\":
                escaped = True
            elif char == '"':
                quoted, closed = False, True
        elif char in ",;":  # list and parameter separators end a value
            if char == separator:
                parts.append(text[start:index])
                start = index + 1
            closed, last = False, ""
        elif char in " \t":
            continue
        elif closed or (char == '"' and last != "="):
            return None  # text after a quoted-string, or a quote inside a token
        elif char == '"':
            quoted = True
        else:
            last = char
    if quoted or escaped:
        return None
    parts.append(text[start:])
    return parts


def list_elements(values: list[str]) -> list[str] | None:
    """The list elements of every field of a list-valued header, in order; None when one is
    malformed (an unterminated quoted-string makes the whole list's meaning unknown)."""
    found: list[str] = []
    for value in values:
        parts = split_list(value, ",")
        if parts is None:
            return None
        found += [part for part in parts if part.strip(" \t")]
    return found


def parse_element(element: str) -> tuple[str, dict[str, str | None]] | None:
    """One list element: (its name, lowercased, {parameter: value or None}), a quoted value unquoted;
    None when malformed or a parameter repeats."""
    pieces = split_list(element, ";")
    if pieces is None:
        return None
    name, *rest = (piece.strip(" \t") for piece in pieces)
    params: dict[str, str | None] = {}
    for part in rest:
        key, sep, value = part.partition("=")
        key = key.strip(" \t").lower()
        value = unquote(value.strip(" \t"))
        if not key or key in params or (sep and not value):
            return None
        params[key] = value if sep else None
    return name.lower(), params
