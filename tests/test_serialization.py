"""Tests for durably.serialization (JsonSerializer)."""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, Literal, NewType, Optional, Union

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from durably.errors import ConfigurationError, PayloadTooLargeError, SerializationError
from durably.serialization import DEFAULT_MAX_PAYLOAD_BYTES, JsonSerializer, Serializer

S = JsonSerializer()


class Color(Enum):
    RED = "red"
    GREEN = "green"


class Priority(Enum):
    LOW = 1
    HIGH = 2


@dataclass
class Money:
    cents: int
    currency: str = "EUR"


@dataclass
class Order:
    id: uuid.UUID
    placed_at: datetime
    total: Money
    lines: list[Money] = field(default_factory=list)
    note: str | None = None
    color: Color = Color.RED


@dataclass
class Node:
    name: str
    children: list[Node] = field(default_factory=list)


class Customer(pydantic.BaseModel):
    name: str
    joined: date
    tags: list[str] = []


@dataclass
class Account:
    owner: Customer
    balance: Decimal


class Opaque:
    """Not serializable by the default serializer."""


UserId = NewType("UserId", int)


def roundtrip(value: Any, hint: Any = Any) -> Any:
    return S.decode(S.encode(value), hint)


# --- encoding format -----------------------------------------------------------------------------


def test_encoding_is_compact_and_keeps_unicode() -> None:
    assert S.encode({"a": [1, 2.5, None, True], "b": "é✓"}) == '{"a":[1,2.5,null,true],"b":"é✓"}'
    assert S.encode((1, 2)) == "[1,2]"
    assert S.encode("plain") == '"plain"'


def test_tagged_forms() -> None:
    dt = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert S.encode(dt) == '{"$datetime":"2026-01-02T03:04:05+00:00"}'
    assert S.encode(date(2026, 1, 2)) == '{"$date":"2026-01-02"}'
    assert S.encode(time(3, 4, 5)) == '{"$time":"03:04:05"}'
    assert S.encode(timedelta(seconds=1.5)) == '{"$timedelta":1.5}'
    assert S.encode(b"\x00\xff") == '{"$bytes":"AP8="}'
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert S.encode(u) == '{"$uuid":"12345678-1234-5678-1234-567812345678"}'
    assert S.encode(Decimal("1.10")) == '{"$decimal":"1.10"}'


def test_enum_set_dataclass_and_pydantic_encoding() -> None:
    assert S.encode(Color.GREEN) == '"green"'
    assert S.encode(Priority.HIGH) == "2"
    assert S.encode({3, 1, 2}) == "[1,2,3]"
    assert S.encode(frozenset({"b", "a"})) == '["a","b"]'
    assert json.loads(S.encode({1, "a"})) in ([1, "a"], ["a", 1])  # unsortable: any order
    assert S.encode(Money(150)) == '{"cents":150,"currency":"EUR"}'
    assert json.loads(S.encode(Customer(name="Ann", joined=date(2020, 5, 1)))) == {
        "name": "Ann",
        "joined": "2020-05-01",
        "tags": [],
    }


# --- round trips without hints -------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -7,
        2**80,
        1.5,
        -0.0,
        "",
        "héllo ✓ 𝄞",
        [],
        {},
        [1, "a", None, [2, {"x": [3]}]],
        {"nested": {"deep": [1.25, False]}},
        datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        datetime(2026, 1, 2, 3, 4, 5),
        date(1999, 12, 31),
        time(23, 59, 59, 999999),
        time(8, 0, tzinfo=UTC),
        timedelta(days=3, seconds=7, microseconds=250000),
        timedelta(seconds=-1.5),
        b"",
        b"\x00binary\xff" * 10,
        uuid.uuid4(),
        Decimal("1.10"),
        Decimal("-0.000000001"),
        Decimal("NaN"),
        {"when": datetime(2026, 1, 1, tzinfo=UTC), "ids": [uuid.UUID(int=1), uuid.UUID(int=2)]},
    ],
)
def test_roundtrip_without_hint(value: Any) -> None:
    out = roundtrip(value)
    if isinstance(value, Decimal) and value.is_nan():
        assert isinstance(out, Decimal) and out.is_nan()
        return
    assert out == value
    assert type(out) is type(value)


def test_decimal_keeps_exact_digits() -> None:
    assert str(roundtrip(Decimal("1.10"))) == "1.10"


def test_tuples_become_lists_without_hint() -> None:
    assert roundtrip((1, (2, 3))) == [1, [2, 3]]


def test_dataclass_without_hint_is_plain_dict_with_tagged_values() -> None:
    order = Order(
        id=uuid.UUID(int=5),
        placed_at=datetime(2026, 3, 1, tzinfo=UTC),
        total=Money(500),
        lines=[Money(200), Money(300, "USD")],
    )
    assert roundtrip(order) == {
        "id": uuid.UUID(int=5),
        "placed_at": datetime(2026, 3, 1, tzinfo=UTC),
        "total": {"cents": 500, "currency": "EUR"},
        "lines": [{"cents": 200, "currency": "EUR"}, {"cents": 300, "currency": "USD"}],
        "note": None,
        "color": "red",
    }


def test_lookalike_tag_dicts() -> None:
    # A one-key dict with a tag whose value does not parse stays a dict.
    assert S.decode('{"$uuid":"not-a-uuid"}') == {"$uuid": "not-a-uuid"}
    assert S.decode('{"$datetime":123}') == {"$datetime": 123}
    # Only dicts with exactly one key are candidates.
    assert S.decode('{"$uuid":"x","other":1}') == {"$uuid": "x", "other": 1}


def test_lone_surrogates_are_refused_as_they_cannot_be_read_back() -> None:
    # issue 12: escaping them stored text whose decoded value no UTF-8 answer can carry
    with pytest.raises(SerializationError, match="lone surrogate"):
        S.encode({"s": "a\ud800b"})
    assert S.decode(S.encode({"s": "a\U0001f600b"})) == {"s": "a\U0001f600b"}


# --- round trips with hints ----------------------------------------------------------------------


def test_dataclass_roundtrip_with_hint() -> None:
    order = Order(
        id=uuid.uuid4(),
        placed_at=datetime(2026, 3, 1, 12, tzinfo=UTC),
        total=Money(500),
        lines=[Money(200), Money(300, "USD")],
        note="gift",
        color=Color.GREEN,
    )
    out = roundtrip(order, Order)
    assert out == order
    assert isinstance(out.total, Money)
    assert all(isinstance(line, Money) for line in out.lines)
    assert out.color is Color.GREEN


def test_nested_dataclasses_in_lists_and_dicts() -> None:
    data = {"a": [Money(1), Money(2)], "b": []}
    assert roundtrip(data, dict[str, list[Money]]) == data
    tree = Node("root", [Node("a"), Node("b", [Node("c")])])
    assert roundtrip(tree, Node) == tree
    assert roundtrip([Order(uuid.UUID(int=1), datetime(2026, 1, 1), Money(1))], list[Order]) == [
        Order(uuid.UUID(int=1), datetime(2026, 1, 1), Money(1))
    ]


def test_pydantic_models() -> None:
    c = Customer(name="Ann", joined=date(2020, 5, 1), tags=["vip"])
    assert roundtrip(c, Customer) == c
    assert roundtrip([c, c], list[Customer]) == [c, c]
    account = Account(owner=c, balance=Decimal("10.05"))
    assert roundtrip(account, Account) == account


@pytest.mark.parametrize(
    ("value", "hint", "expected"),
    [
        ((1, "a"), tuple[int, str], (1, "a")),
        ((1, 2, 3), tuple[int, ...], (1, 2, 3)),
        ({1, 2}, set[int], {1, 2}),
        (frozenset({"x"}), frozenset[str], frozenset({"x"})),
        ([1, 2], list[float], [1.0, 2.0]),
        ({1: "a", 2: "b"}, dict[int, str], {1: "a", 2: "b"}),
        ({"1.5": 1}, dict[float, int], {1.5: 1}),
        (None, Optional[Money], None),  # noqa: UP045 - the typing.Optional spelling on purpose
        (Money(3), Money | None, Money(3)),
        ("red", Color, Color.RED),
        (Color.GREEN, Color, Color.GREEN),
        (2, Priority, Priority.HIGH),
        ([Color.RED, Color.GREEN], list[Color], [Color.RED, Color.GREEN]),
        ("2026-01-02T03:04:05+00:00", datetime, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (datetime(2026, 1, 2, tzinfo=UTC), datetime, datetime(2026, 1, 2, tzinfo=UTC)),
        ("2026-01-02", date, date(2026, 1, 2)),
        (str(uuid.UUID(int=9)), uuid.UUID, uuid.UUID(int=9)),
        (uuid.UUID(int=9), uuid.UUID, uuid.UUID(int=9)),
        ("2.50", Decimal, Decimal("2.50")),
        (Decimal("2.50"), Decimal, Decimal("2.50")),
        (90, timedelta, timedelta(seconds=90)),
        (b"abc", bytes, b"abc"),
        ("x", Literal["x", "y"], "x"),
        (5, Annotated[int, "meta"], 5),
        (7, UserId, 7),
        ({"k": [1]}, Any, {"k": [1]}),
        ({"k": [1]}, dict, {"k": [1]}),
        ([1, "a"], list, [1, "a"]),
        ([3, 4], tuple, (3, 4)),
    ],
)
def test_roundtrip_with_hint(value: Any, hint: Any, expected: Any) -> None:
    out = roundtrip(value, hint)
    assert out == expected
    assert type(out) is type(expected)


def test_union_members_are_tried_in_order() -> None:
    assert roundtrip(Money(5), Union[int, Money]) == Money(5)  # noqa: UP007
    assert roundtrip(5, int | Money) == 5
    assert roundtrip("5", int | str) == "5"
    assert roundtrip(True, bool | int) is True
    assert roundtrip(3, str | float) == 3.0
    assert roundtrip(None, int | None) is None


def test_unknown_hints_return_json_value() -> None:
    assert roundtrip({"a": 1}, Opaque) == {"a": 1}
    assert roundtrip([1, 2], "list[int]") == [1, 2]  # unresolved forward reference


# --- calls and results ---------------------------------------------------------------------------


def transfer(
    source: Money, when: datetime, lines: list[Money], *, memo: str | None = None, cents: int = 0
) -> Order:
    raise NotImplementedError


def varargs(first: Money, *rest: Money, **extra: datetime) -> dict[str, Money]:
    raise NotImplementedError


def unresolvable(x: Undefined) -> Undefined:  # type: ignore[name-defined]  # noqa: F821
    raise NotImplementedError


async def async_total(lines: list[Money]) -> Money:
    return Money(sum(line.cents for line in lines))


def test_encode_call_format() -> None:
    text = S.encode_call((1, "a"), {"cents": 5})
    assert text == '{"args":[1,"a"],"kwargs":{"cents":5}}'


def test_call_roundtrip_converts_arguments() -> None:
    when = datetime(2026, 2, 3, 4, 5, tzinfo=UTC)
    args = (Money(100), when, [Money(1), Money(2, "USD")])
    kwargs = {"memo": "rent", "cents": 7}
    text = S.encode_call(args, kwargs, workflow_id="wf-1", name="transfer")
    out_args, out_kwargs = S.decode_call(text, transfer)
    assert out_args == args
    assert isinstance(out_args, tuple)
    assert isinstance(out_args[2][1], Money)
    assert out_kwargs == kwargs


def test_call_roundtrip_keyword_passed_positional_params_and_varargs() -> None:
    when = datetime(2026, 2, 3, tzinfo=UTC)
    text = S.encode_call((), {"source": Money(1), "when": when, "lines": []})
    assert S.decode_call(text, transfer) == ((), {"source": Money(1), "when": when, "lines": []})
    text = S.encode_call((Money(1), Money(2), Money(3)), {"at": when})
    assert S.decode_call(text, varargs) == ((Money(1), Money(2), Money(3)), {"at": when})


def test_decode_call_without_resolvable_hints_does_not_convert() -> None:
    text = S.encode_call((Money(1),), {})
    assert S.decode_call(text, unresolvable) == (({"cents": 1, "currency": "EUR"},), {})
    assert S.decode_call(text, lambda x: x) == (({"cents": 1, "currency": "EUR"},), {})


def test_decode_call_rejects_wrong_shape() -> None:
    with pytest.raises(SerializationError, match="'args' and 'kwargs'"):
        S.decode_call("[1, 2]", transfer)


def test_decode_call_error_names_argument() -> None:
    text = S.encode_call(({"currency": "EUR"},), {})
    with pytest.raises(SerializationError, match=r"argument 1 as .*Money: .*missing .*'cents'"):
        S.decode_call(text, transfer)
    text = S.encode_call((Money(1), datetime(2026, 1, 1), []), {"cents": "seven"})
    with pytest.raises(SerializationError, match=r"keyword argument 'cents' as int.*got str"):
        S.decode_call(text, transfer)
    text = S.encode_call((Money(1), datetime(2026, 1, 1), [{"cents": "x"}]), {})
    with pytest.raises(SerializationError, match=r"argument 3 .* at \[0\]\.cents: expected int"):
        S.decode_call(text, transfer)


def test_decode_result_sync_and_async() -> None:
    order = Order(uuid.UUID(int=3), datetime(2026, 1, 1, tzinfo=UTC), Money(9))
    assert S.decode_result(S.encode(order), transfer) == order
    total = asyncio.run(async_total([Money(1), Money(2)]))
    out = S.decode_result(S.encode(total), async_total)
    assert out == Money(3) and isinstance(out, Money)
    assert S.decode_result(S.encode({"a": Money(1)}), varargs) == {"a": Money(1)}
    assert S.decode_result(S.encode(Money(1)), unresolvable) == {"cents": 1, "currency": "EUR"}


def test_decode_result_error_names_function_and_type() -> None:
    with pytest.raises(SerializationError, match=r"result of async_total as .*Money"):
        S.decode_result('{"currency": "EUR"}', async_total)


# --- encode errors -------------------------------------------------------------------------------


def test_unsupported_type_message() -> None:
    with pytest.raises(SerializationError) as err:
        S.encode(
            {"x": [Opaque()]},
            what="result of step 'withdraw'",
            workflow_id="wf-42",
            step="withdraw",
        )
    msg = str(err.value)
    assert type(err.value) is SerializationError
    assert "result of step 'withdraw'" in msg
    assert "wf-42" in msg and "withdraw" in msg
    assert "Opaque" in msg
    assert "durably.App(serializer=...)" in msg and "dataclasses" in msg
    assert err.value.workflow_id == "wf-42" and err.value.step == "withdraw"
    assert err.value.code == "unserializable"


def test_unsupported_nested_in_dataclass() -> None:
    @dataclass
    class Holder:
        thing: object

    with pytest.raises(SerializationError, match="Opaque"):
        S.encode(Holder(Opaque()))


def test_encode_call_names_the_argument() -> None:
    with pytest.raises(SerializationError) as err:
        S.encode_call((1, Opaque()), {}, workflow_id="wf-7", name="transfer")
    msg = str(err.value)
    assert "argument 2 of workflow 'transfer'" in msg
    assert "wf-7" in msg and "Opaque" in msg

    with pytest.raises(SerializationError) as err:
        S.encode_call((1,), {"cents": {1, Opaque()}}, workflow_id="wf-7", step="withdraw")
    msg = str(err.value)
    assert "keyword argument 'cents' of step 'withdraw'" in msg
    assert "wf-7" in msg and "Opaque" in msg
    assert err.value.step == "withdraw"


def test_nan_and_infinity_rejected() -> None:
    for bad in (math.nan, math.inf, -math.inf, [1.0, {"x": math.nan}]):
        with pytest.raises(SerializationError, match="NaN and infinity"):
            S.encode(bad, workflow_id="wf-1")


def test_circular_references() -> None:
    items: list[Any] = [1]
    items.append(items)
    with pytest.raises(SerializationError, match="circular reference"):
        S.encode(items)
    d: dict[str, Any] = {}
    d["self"] = d
    with pytest.raises(SerializationError, match="circular reference"):
        S.encode(d)
    node = Node("loop")
    node.children.append(node)
    with pytest.raises(SerializationError, match="circular reference"):
        S.encode(node, workflow_id="wf-c", step="s")


def test_shared_references_are_not_circular() -> None:
    shared = [1, 2]
    assert S.encode([shared, shared]) == "[[1,2],[1,2]]"


def test_non_str_keys_rejected() -> None:
    with pytest.raises(SerializationError, match=r"keys must be str.*tuple") as err:
        S.encode({(1, 2): "x"}, workflow_id="wf-k", step="s")
    assert "wf-k" in str(err.value)
    with pytest.raises(SerializationError, match=r"keys must be str.*Color"):
        S.encode({Color.RED: 1})


def test_scalar_keys_are_stringified_by_json() -> None:
    # json itself turns int/float/bool/None keys into strings; a dict[int, V] hint turns them back.
    assert S.encode({1: "a"}) == '{"1":"a"}'
    assert S.decode(S.encode({1: "a"}), dict[int, str]) == {1: "a"}


def test_too_deep_nesting() -> None:
    value: list[Any] = []
    for _ in range(100_000):
        value = [value]
    with pytest.raises(SerializationError, match="nested too deeply"):
        S.encode(value)


# --- payload limit -------------------------------------------------------------------------------


def test_payload_limit_boundary() -> None:
    s = JsonSerializer(max_payload_bytes=100)
    assert len(s.encode("x" * 98)) == 100  # exactly at the limit: passes
    with pytest.raises(PayloadTooLargeError) as err:
        s.encode("x" * 99, what="result of step 'fetch'", workflow_id="wf-big", step="fetch")
    msg = str(err.value)
    assert "result of step 'fetch'" in msg and "wf-big" in msg
    assert "101 bytes" in msg and "100 bytes" in msg
    assert "durably.App(max_payload_bytes=...)" in msg and "reference" in msg
    assert isinstance(err.value, SerializationError)
    assert err.value.code == "payload_too_large"
    assert err.value.workflow_id == "wf-big" and err.value.step == "fetch"


def test_payload_limit_counts_utf8_bytes() -> None:
    s = JsonSerializer(max_payload_bytes=10)
    assert s.encode("éééé") == '"éééé"'  # 6 chars, 10 bytes
    with pytest.raises(PayloadTooLargeError, match="11 bytes"):
        s.encode("éééé1")


def test_payload_limit_applies_to_calls() -> None:
    s = JsonSerializer(max_payload_bytes=50)
    with pytest.raises(PayloadTooLargeError, match="arguments of workflow 'transfer'"):
        s.encode_call(("x" * 60,), {}, workflow_id="wf-1", name="transfer")


def test_default_limit_and_bad_limits() -> None:
    assert JsonSerializer().max_payload_bytes == DEFAULT_MAX_PAYLOAD_BYTES == 1_048_576
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigurationError, match="max_payload_bytes"):
            JsonSerializer(max_payload_bytes=bad)  # type: ignore[arg-type]


# --- decode errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "{", "[1,]", "nope", '{"a": 1} trailing', "NaN "])
def test_malformed_json(text: str) -> None:
    with pytest.raises(SerializationError, match="not valid JSON") as err:
        S.decode(text)
    assert not isinstance(err.value, json.JSONDecodeError)


def test_dataclass_missing_fields() -> None:
    with pytest.raises(SerializationError, match=r"Money is missing field\(s\) 'cents'"):
        S.decode('{"currency": "EUR"}', Money)


def test_value_not_fitting_hint_names_type_and_path() -> None:
    with pytest.raises(SerializationError, match=r"Order.*at total\.cents: expected int, got str"):
        S.decode(
            S.encode({"id": uuid.UUID(int=1), "placed_at": datetime(2026, 1, 1), "total": {}})[:-1]
            + ',"total":{"cents":"x"}}',
            Order,
        )
    with pytest.raises(SerializationError, match=r"at \[1\]\['k'\]: expected int, got str"):
        S.decode('[{}, {"k": "v"}]', list[dict[str, int]])
    with pytest.raises(SerializationError, match=r"'purple' is not a valid .*Color"):
        S.decode('"purple"', Color)
    with pytest.raises(SerializationError, match="Customer"):
        S.decode('{"name": "Ann"}', Customer)
    with pytest.raises(SerializationError, match="expected tuple"):
        S.decode("[1, 2, 3]", tuple[int, int])
    with pytest.raises(SerializationError, match="expected int"):
        S.decode("true", int)
    with pytest.raises(SerializationError, match=r"expected .*Money"):
        S.decode('"x"', Money | None)
    with pytest.raises(SerializationError, match="datetime"):
        S.decode('"yesterday"', datetime)


def test_is_a_serializer() -> None:
    assert isinstance(S, Serializer)


# --- property ------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children)
        | st.dictionaries(st.text().filter(lambda k: not k.startswith("$")), children)
    ),
    max_leaves=30,
)


@settings(max_examples=300)
@given(json_values)
def test_json_native_values_roundtrip(value: Any) -> None:
    text = S.encode(value)
    assert S.decode(text) == value
    assert json.loads(text) == value
    assert S.decode(text, Any) == value
