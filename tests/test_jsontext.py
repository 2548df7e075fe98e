"""planner.jsontext writes exactly json.dumps(obj, indent=2, sort_keys=True, allow_nan=False):
the same text for any JSON-like value (shared sub-objects included), the same errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner import jsontext

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=5), inner, max_size=4), max_leaves=30)


def _outcome(fn, obj):
    try:
        return fn(obj)
    except (TypeError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"


@settings(max_examples=300, deadline=None)
@given(values)
def test_same_text_as_json(obj):
    assert jsontext.dumps(obj) == jsontext.reference(obj)
    buf = io.StringIO()
    jsontext.write_json(buf, obj)
    assert buf.getvalue() == jsontext.reference(obj) + "\n"


def test_shared_objects_and_edge_values():
    shared = {"x": [1, 2.5, {"deep": "\u00e9\n\""}]}
    doc = {"rows": [{"s": shared, "t": shared["x"], "n": i} for i in range(40)], "again": [shared] * 12,
           "nested": [[shared]] * 3, "num": np.float64(1.5), "big": 1e300, "tiny": 5e-324, "neg": -0.0,
           "int": 10**30, "keys": {1: "a", 2.5: "b", 3: "c"}, "bools": {True: 1, False: 0}, "tuple": (1, 2), "empty": [{}, []]}
    assert jsontext.dumps(doc) == jsontext.reference(doc)
    big = {"rows": [{"i": i, "s": shared} for i in range(3 * jsontext.CHUNK)]}
    buf = io.StringIO()
    jsontext.write_json(buf, big)
    assert buf.getvalue() == jsontext.reference(big) + "\n"


@pytest.mark.parametrize("bad", [{"a": float("nan")}, [float("inf")], {"a": -float("inf")}, {(1,): 2},
                                 {"a": object()}, {"a": np.int64(3)}, {1: "a", None: "b", 2.5: "c"}])
def test_same_errors(bad):
    got, want = _outcome(jsontext.dumps, bad), _outcome(jsontext.reference, bad)
    assert got == want and got.split(":")[0] in ("TypeError", "ValueError")
