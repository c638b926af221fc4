"""Keyset cursors: exact to the microsecond, and nothing but what encode() made decodes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bulkapp.services.messaging import cursors


def test_cursors_round_trip_to_the_microsecond():
    at = datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)
    assert cursors.decode(cursors.encode(at, 77)) == (at, 77)
    assert cursors.decode(cursors.encode(at.replace(tzinfo=None), 77)) == (at, 77)  # naive means UTC


@pytest.mark.parametrize(
    "raw", ["", "1_999999999999999999", "1_0", "²_1", "1_²", "1_1_1", "abc", f"{10**18 - 1}_1", None, "1_-1"]
)
def test_anything_else_is_an_invalid_cursor(raw):
    with pytest.raises(cursors.InvalidCursor):
        cursors.decode(raw)
