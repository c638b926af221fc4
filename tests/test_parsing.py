"""The bounded parsers every id, limit, date and API body goes through."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bulkapp.parsing import (
    BIGINT_MAX,
    INT_MAX,
    MalformedJson,
    has_unstorable_text,
    parse_date,
    parse_datetime,
    parse_future,
    parse_id,
    parse_ids,
    parse_int,
    parse_json,
)

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "raw", ["", " ", "0", "-1", "²", "٣", "1_000", "1e3", "0x10", "+5", "1.0", str(INT_MAX + 1), "9" * 5000, None, True]
)
def test_parse_id_refuses_what_no_integer_column_holds(raw):
    assert parse_id(raw) is None


def test_parse_id_bounds():
    assert parse_id("1") == 1 and parse_id(" 42 ") == 42 and parse_id(str(INT_MAX)) == INT_MAX
    assert parse_id(str(INT_MAX + 1), big=True) == INT_MAX + 1 and parse_id(str(BIGINT_MAX), big=True) == BIGINT_MAX
    assert parse_id(str(BIGINT_MAX + 1), big=True) is None
    assert parse_id(7) == 7 and parse_id(0) is None and parse_id(2**40) is None


def test_parse_ids_keeps_the_valid_ones_once_in_order():
    assert parse_ids(["3", "²", "1", "3", "99999999999999999999", "-2", "2"]) == [3, 1, 2]


def test_parse_int_bounds():
    assert parse_int("-5", -10, 10) == -5 and parse_int("11", -10, 10) is None and parse_int("10", -10, 10) == 10


@pytest.mark.parametrize("raw", ["0001-01-01", "9999-12-31", "1999-12-31", "2101-01-01", "2026-02-30", "2026-1-1",
                                 "²026-01-01", "", None, "2026-01-01T00:00"])  # fmt: skip
def test_parse_date_refuses_dates_outside_2000_to_2100(raw):
    assert parse_date(raw) is None


def test_parse_date_accepts_the_bounds():
    assert parse_date("2000-01-01") == date(2000, 1, 1) and parse_date("2100-12-31") == date(2100, 12, 31)
    assert parse_date(date(2026, 5, 1)) == date(2026, 5, 1) and parse_date(date(1, 1, 1)) is None


@pytest.mark.parametrize("raw", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00", "2000-01-01T00:00:00+03:00",
                                 "tomorrow", "", "2026-13-01T00:00:00Z", "\uff12\uff10\uff12\uff16-01-01T00:00:00Z",
                                 "x" * 100, None, 5])  # fmt: skip
def test_parse_datetime_refuses_what_is_not_a_bounded_iso_time(raw):
    assert parse_datetime(raw) is None


def test_parse_datetime_is_utc():
    assert parse_datetime("2026-03-01T08:30:00+03:00") == datetime(2026, 3, 1, 5, 30, tzinfo=UTC)
    assert parse_datetime("2026-03-01T08:30:00Z") == datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
    assert parse_datetime("2026-03-01T08:30:00") == datetime(2026, 3, 1, 8, 30, tzinfo=UTC)


def test_parse_future_is_after_now_and_at_most_5_years_ahead():
    assert parse_future("2026-12-06T12:00:00Z", NOW) is None  # now is not the future
    assert parse_future("2026-12-06T12:00:01Z", NOW) == NOW + timedelta(seconds=1)
    assert parse_future("2031-12-05T12:00:00Z", NOW) is not None
    assert parse_future("2032-12-06T12:00:00Z", NOW) is None


def test_parse_json_refuses_deep_nesting_and_bad_text():
    assert parse_json(b'{"a": [1, {"b": 2}]}') == {"a": [1, {"b": 2}]}
    assert parse_json("[" * 32 + "]" * 32) is not None
    for raw in ("[" * 33 + "]" * 33, "[" * 100_000 + "]" * 100_000, b"\xff", "{not json", ""):
        with pytest.raises(MalformedJson):
            parse_json(raw)


def test_unstorable_text_is_found_anywhere_in_a_document():
    assert not has_unstorable_text({"name": "Wanjiru 😀", "tags": ["a"], "n": 5})
    for bad in ({"name": "a\ud800b"}, {"a\x00": 1}, {"x": [{"y": "\udfff"}]}, ["\x00"]):
        assert has_unstorable_text(bad), bad
