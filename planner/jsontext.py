"""JSON text of the planner's documents (result.json, plan.json): exactly the bytes of
``json.dumps(obj, indent=2, sort_keys=True, allow_nan=False)``, made faster and leaner.

Python 3.11's C encoder does not indent, so ``json.dumps(..., indent=2)`` runs the pure-Python
generator encoder (about 8 MB/s here; a 5000 x 300 result.json is hundreds of MB). This encoder
writes the same text with a plain recursive function, and encodes a container met again (the
candidate table shares its ``classes`` / ``unit_prices`` / ``shape`` values between candidates
alike) once per indentation level. :func:`write_json` streams the text to a file in chunks, so
the whole document never sits in memory as one string.

Same rules as the json module: keys sorted, ``str``/``int``/``float``/``bool``/``None`` keys
(others raise TypeError), lists and tuples as arrays, non-ASCII escaped, NaN and infinities
raise ValueError, floats by ``float.__repr__`` and ints by ``int.__repr__`` (subclasses such as
numpy's float64 included, as json does), anything else raises TypeError.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from json.encoder import encode_basestring_ascii as _str

_float = float.__repr__
_int = int.__repr__
_INF = float("inf")
#: pieces collected before they are handed on as one chunk
CHUNK = 50_000
#: references above which a container is probably shared (held by several parents): only those
#: are remembered (an unshared one has about 6: its parent and this encoder's call frames). A
#: wrong guess costs time or memory, never a byte of the output.
SHARED_REFS = 8


def _floatstr(o: float) -> str:
    if o != o or o == _INF or o == -_INF:
        raise ValueError("Out of range float values are not JSON compliant: " + repr(o))
    return _float(o)


def _key(k) -> str:
    if isinstance(k, str):
        return _str(k)
    if isinstance(k, float):
        return _str(_floatstr(k))
    if k is True:
        return '"true"'
    if k is False:
        return '"false"'
    if k is None:
        return '"null"'
    if isinstance(k, int):
        return _str(_int(k))
    raise TypeError(f"keys must be str, int, float, bool or None, not {k.__class__.__name__}")


class _Encoder:
    def __init__(self, flush: Callable[[list[str]], None] | None = None):
        self.out: list[str] = []
        self.flush = flush
        self.seen: set[tuple[int, int]] = set()
        self.memo: dict[tuple[int, int], str] = {}
        self.keys: dict[tuple[str, str], str] = {}  # (lead, key) -> the text before the value

    def value(self, o, level: int) -> None:
        out = self.out
        if isinstance(o, str):
            out.append(_str(o))
        elif o is None:
            out.append("null")
        elif o is True:
            out.append("true")
        elif o is False:
            out.append("false")
        elif isinstance(o, int):
            out.append(_int(o))
        elif isinstance(o, float):
            out.append(_floatstr(o))
        elif isinstance(o, list | tuple | dict):
            self.container(o, level)
        else:
            raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")

    def container(self, o, level: int) -> None:
        out = self.out
        if not o:
            out.append("{}" if isinstance(o, dict) else "[]")
            return
        if sys.getrefcount(o) > SHARED_REFS:
            key = (id(o), level)
            text = self.memo.get(key)
            if text is not None:
                out.append(text)
                return
            if key in self.seen:  # met again at this level: keep its text for the next times
                inner = _Encoder()
                inner.seen, inner.memo, inner.keys = self.seen, self.memo, self.keys
                inner.container_body(o, level)
                text = self.memo[key] = "".join(inner.out)
                out.append(text)
                return
            self.seen.add(key)
        self.container_body(o, level)
        if self.flush is not None and len(self.out) >= CHUNK:
            self.flush(self.out)
            self.out = []

    def container_body(self, o, level: int) -> None:
        sep = ",\n" + "  " * (level + 1)
        first = sep[1:]
        out = self.out
        if isinstance(o, dict):
            out.append("{")
            lead = first
            keys = self.keys
            for k, v in sorted(o.items()):
                head = keys.get((lead, k)) if isinstance(k, str) else None
                if head is None:
                    head = lead + _key(k) + ": "
                    if isinstance(k, str):
                        keys[(lead, k)] = head
                lead = sep
                if isinstance(v, str):
                    out.append(head + _str(v))
                elif isinstance(v, float):
                    out.append(head + _floatstr(v))
                else:
                    out.append(head)
                    self.value(v, level + 1)
                    out = self.out
            out.append("\n" + "  " * level + "}")
        else:
            out.append("[")
            lead = first
            for v in o:
                out.append(lead)
                lead = sep
                if isinstance(v, str):
                    out.append(_str(v))
                else:
                    self.value(v, level + 1)
                    out = self.out
            out.append("\n" + "  " * level + "]")


def dumps(obj) -> str:
    """``json.dumps(obj, indent=2, sort_keys=True, allow_nan=False)``, the same text."""
    enc = _Encoder()
    enc.value(obj, 0)
    return "".join(enc.out)


def write_json(fh, obj, end: str = "\n") -> None:
    """Write the text of :func:`dumps` (then ``end``) to a text file, chunk by chunk."""
    enc = _Encoder(flush=lambda pieces: fh.write("".join(pieces)))
    enc.value(obj, 0)
    fh.write("".join(enc.out) + end)


def reference(obj) -> str:
    """What :func:`dumps` must equal (the json module)."""
    return json.dumps(obj, indent=2, sort_keys=True, allow_nan=False)
