"""Unit tests of durably.limits: the one place that says what input durably accepts."""

from __future__ import annotations

import json
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from durably import limits
from durably.errors import ConfigurationError, SerializationError
from durably.serialization import JsonSerializer


def nested_text(depth: int, leaf: str = '"a [ { string } ] \\\\\\" {"') -> str:
    """The JSON text of ``nested(depth, ...)``, built without recursion."""
    opens = "".join('{"k":' if i % 2 == 0 else "[" for i in reversed(range(depth)))
    closes = "".join("}" if i % 2 == 0 else "]" for i in range(depth))
    return opens + leaf + closes


def nested(depth: int, leaf: object = 1) -> object:
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


def test_depth_limit_is_far_under_the_recursion_limit() -> None:
    """Decoding with type hints takes about three frames a level: the limit leaves room."""
    frames = 3 * limits.MAX_DEPTH
    assert frames < sys.getrecursionlimit() / 2


@pytest.mark.parametrize("depth", [0, 1, 2, 50, 99, 100, 101, 150, 5000])
def test_too_deep_matches_the_real_depth(depth: int) -> None:
    text = nested_text(depth)
    if depth < 500:
        assert json.loads(text) == nested(depth, 'a [ { string } ] \\" {')
    assert limits.too_deep(text) is (depth > limits.MAX_DEPTH)
    assert limits.too_deep(text, depth) is False
    if depth:
        assert limits.too_deep(text, depth - 1) is True


def test_too_deep_counts_the_deepest_branch_of_wide_values() -> None:
    wide = {"a": [[{}] * 3000, [nested(97)]], "b": ["[[[[" * 50]}  # 3 + 97 levels
    assert limits.too_deep(json.dumps(wide)) is False
    assert limits.too_deep(json.dumps(wide), 99) is True


@given(st.recursive(st.none() | st.text(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)))
@settings(max_examples=100, deadline=None)
def test_too_deep_agrees_with_a_recursive_walk(value: object) -> None:
    def depth(v: object) -> int:
        if isinstance(v, list):
            return 1 + max(map(depth, v), default=0)
        if isinstance(v, dict):
            return 1 + max(map(depth, v.values()), default=0)
        return 0

    text = json.dumps(value)
    for limit in range(0, 6):
        assert limits.too_deep(text, limit) is (depth(value) > limit)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("", "non-empty"),
        (5, "must be a non-empty string"),
        ("a\x00b", "NUL"),
        ("a\ud800", "lone surrogate"),
        ("x" * 201, "over the limit of 200"),
    ],
)
def test_check_name_refuses(value: object, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        limits.check_name(value, "workflow name")


@pytest.mark.parametrize("name", ["a/b", ".", "..", "tab\there", "x" * 201, "\udc80", ""])
def test_event_names_that_cannot_be_a_route_segment_or_stored_are_refused(name: str) -> None:
    with pytest.raises(ConfigurationError, match="event name"):
        limits.check_event_name(name)


def test_event_names_and_dedup_keys_that_are_fine() -> None:
    for name in ("approved", "a.b:c-d_e", "é ü 日本", "x" * 200, "a..b", "%2F"):
        assert limits.check_event_name(name) == name
    assert limits.check_dedup_key(None) is None
    assert limits.check_dedup_key("k" * limits.MAX_DEDUP_KEY_LENGTH)
    with pytest.raises(ConfigurationError, match="over the limit of 512"):
        limits.check_dedup_key("k" * (limits.MAX_DEDUP_KEY_LENGTH + 1))
    with pytest.raises(ConfigurationError, match="NUL"):
        limits.check_dedup_key("a\x00")


@pytest.mark.parametrize(
    "text", ["²", "١٢", "\uff11\uff12", "-1", "+1", "1.0", "", " ", "1e3", "9" * 5000, "2147483648"]
)
def test_parse_count_takes_ascii_digits_in_range_only(text: str) -> None:
    with pytest.raises(ConfigurationError, match="whole number >= 1 and <="):
        limits.parse_count(text, "limit", 1)


def test_parse_count_reads_numbers() -> None:
    assert limits.parse_count("007", "limit", 1, 1000) == 7
    assert limits.parse_count(str(limits.MAX_COUNT), "n", 0) == limits.MAX_COUNT
    with pytest.raises(ConfigurationError, match=">= 1 and <= 1000, got 1001"):
        limits.parse_count("1001", "limit", 1, 1000)


@pytest.mark.parametrize("value", [True, 1.5, "3", 0, 10**30, -(10**400), None])
def test_check_count_refuses(value: object) -> None:
    with pytest.raises(ConfigurationError, match="whole number"):
        limits.check_count(value, "limit", 1)


@pytest.mark.parametrize("value", [10**400, -(10**400), float("nan"), float("inf"), "1", True])
def test_check_epoch_refuses(value: object) -> None:
    with pytest.raises(ConfigurationError, match="finite epoch seconds"):
        limits.check_epoch(value, "created_after")


def test_loads_refuses_depth_and_constants() -> None:
    assert limits.loads("[[1]]", "x") == [[1]]
    with pytest.raises(SerializationError, match="nested too deeply \\(more than 100 levels"):
        limits.loads("[" * 10_000 + "]" * 10_000, "the body")
    with pytest.raises(SerializationError, match="nested too deeply \\(more than 100 levels"):
        limits.loads(json.dumps(nested(103)), "the body")
    assert limits.loads(json.dumps(nested(102)), "the body")  # a body's two levels
    with pytest.raises(ValueError, match="NaN"):
        limits.loads("[NaN]", "x")
    assert limits.loads("[Infinity]", "x", constants=True) == [float("inf")]


def test_readable_replaces_lone_surrogates_only() -> None:
    assert limits.readable("ok é 😀") == "ok é 😀"
    assert limits.readable("a\ud800b") == "a\ufffdb"
    assert limits.readable("a\ud83d\ude00") == "a😀"  # a valid pair is joined


def test_serializer_refuses_what_cannot_be_read_back() -> None:
    s = JsonSerializer()
    with pytest.raises(SerializationError, match="lone surrogate") as err:
        s.encode({"k": ["\ud800"]}, what="result of step 'x'", workflow_id="w-1", step="x")
    assert "workflow id 'w-1', step 'x'" in err.value.message
    assert (err.value.workflow_id, err.value.step) == ("w-1", "x")
    with pytest.raises(SerializationError, match="lone surrogate"):
        s.encode({"\udfff": 1})
    with pytest.raises(SerializationError, match="nested too deeply \\(more than 100 levels"):
        s.encode(nested(101))
    assert s.decode(s.encode(nested(100))) == nested(100)
    with pytest.raises(SerializationError, match=r"arguments of workflow 'wf'.*100 levels"):
        s.encode_call((nested(101),), {}, name="wf")
    with pytest.raises(SerializationError, match="2-level call object"):  # 99 + 2 levels
        s.encode_call((), {"k": nested(99)}, name="wf")
    call = s.encode_call((nested(98),), {"k": nested(98)}, name="wf")

    def wf(a: object, k: object) -> None: ...

    assert s.decode_call(call, wf) == ((nested(98),), {"k": nested(98)})
    # what was stored can be shown again: the decoded call re-encodes within the limit
    assert s.encode(json.loads(call)) == call
