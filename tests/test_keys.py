from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trigger_nb import InvalidCacheKeyError
from trigger_nb._core.keys import encode_key, idempotency_key, task_id_for


def test_typed_encoding_keeps_look_alike_keys_apart() -> None:
    keys = [["a", "b"], "a:b", 1, "1", True, 1.0, ("a", "b"), [1], ["1"], [None], [True]]
    encoded = [encode_key(k) for k in keys]
    # list and tuple of the same parts are the same key; everything else differs.
    assert encoded[0] == encoded[6]
    assert len(set(encoded)) == len(keys) - 1


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("", "empty string"),
        ([], "empty list"),
        ({"a": 1}, "type dict"),
        (None, "type NoneType"),
        (["a", ["nested"]], "part 1 of type list"),
        ([b"bytes"], "part 0 of type bytes"),
        (object(), "type object"),
    ],
)
def test_unsupported_keys_name_the_type_and_the_fix(key: object, fragment: str) -> None:
    with pytest.raises(InvalidCacheKeyError) as caught:
        encode_key(key)
    assert fragment in str(caught.value)
    assert isinstance(caught.value, TypeError)


def test_idempotency_key_is_stable_and_scoped() -> None:
    root = idempotency_key("run_1", None, encode_key("k"))
    assert root == idempotency_key("run_1", None, encode_key("k"))
    assert len(root) == 64 and int(root, 16) >= 0
    assert root != idempotency_key("run_1", task_id_for(root), encode_key("k"))
    assert root != idempotency_key("run_2", None, encode_key("k"))


def test_unicode_and_huge_keys_are_fine() -> None:
    assert encode_key("émoji ☃ \ud800") != encode_key("émoji ☃")
    huge = "x" * 1_000_000
    assert len(idempotency_key("r", None, encode_key(huge))) == 64


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(),
            st.integers(min_value=-(10**1200), max_value=10**1200),
            st.booleans(),
            st.none(),
            st.floats(allow_nan=True),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_the_fast_list_encoding_equals_the_general_one(parts: list[object]) -> None:
    import json

    from trigger_nb._core.keys import _encode_part

    general = "l" + json.dumps([_encode_part(p, i) for i, p in enumerate(parts)])
    assert encode_key(parts) == general
    assert encode_key(tuple(parts)) == general
