"""Hourly roll-ups of outbound messages and spend, and exact totals read from them plus a short live tail."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from bulkapp.columns import UTCDateTime, utcnow
from bulkapp.extensions import db
from bulkapp.models import Message, MessageStatsHourly, SpendStatsHourly, StatsWatermark, WalletTransaction

HOUR = timedelta(hours=1)
# A row committed up to this long after it was stamped (created_at/updated_at) still reaches the roll-up.
LATE_COMMIT_MARGIN = timedelta(minutes=15)
SPEND_TYPES = ("deduction", "hold", "release", "refund")

Range = tuple[datetime, datetime | None]


@dataclass(frozen=True)
class Rollup:
    """``source`` rows matching ``where``, summed per tenant and UTC hour (of ``created_at``) by ``keys``.

    ``values`` maps each column of ``target`` to its aggregate over the source rows; the same aggregate
    counts the live tail, so roll-up and live parts add up to what one query over the source would say.
    """

    name: str
    source: Any
    target: Any
    keys: tuple[str, ...]
    values: dict[str, sa.ColumnElement]
    where: sa.ColumnElement


MESSAGES = Rollup(
    "messages",
    Message,
    MessageStatsHourly,
    ("channel", "status"),
    {
        "messages": sa.func.count(Message.id),
        "units": sa.func.sum(Message.segments),
        "cost": sa.func.sum(Message.cost),
    },
    Message.direction == "outbound",
)
# Spend as the dashboard shows it: completed deductions and campaign holds, less releases and refunds.
SPEND = Rollup(
    "spend",
    WalletTransaction,
    SpendStatsHourly,
    (),
    {"amount": sa.func.sum(-WalletTransaction.amount)},
    sa.and_(WalletTransaction.status == "completed", WalletTransaction.type.in_(SPEND_TYPES)),
)
ROLLUPS = (MESSAGES, SPEND)


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _ceil_hour(moment: datetime) -> datetime:
    floor = floor_hour(moment)
    return floor if floor == moment else floor + HOUR


def _is_postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _hour_of(column) -> sa.ColumnElement:
    """SQL for the UTC hour a timestamp falls in (constants inlined so GROUP BY matches the select)."""
    if _is_postgresql():
        utc = sa.literal_column("'UTC'")
        return sa.func.timezone(
            utc, sa.func.date_trunc(sa.literal_column("'hour'"), sa.func.timezone(utc, column)), type_=UTCDateTime()
        )
    # SQLite keeps UTC text in SQLAlchemy's format; the same format makes hours compare and parse as datetimes.
    return sa.func.strftime(sa.literal_column("'%Y-%m-%d %H:00:00.000000'"), column, type_=UTCDateTime())


def watermarks() -> dict[str, datetime]:
    """Each refreshed roll-up's name and the end of its complete hours (absent before its first refresh)."""
    return dict(db.session.execute(sa.select(StatsWatermark.name, StatsWatermark.sealed_until)).all())


def _ranges(hours: list[datetime]) -> list[tuple[datetime, datetime]]:
    """Sorted whole hours merged into [start, end) runs."""
    runs: list[tuple[datetime, datetime]] = []
    for hour in sorted(hours):
        if runs and runs[-1][1] == hour:
            runs[-1] = (runs[-1][0], hour + HOUR)
        else:
            runs.append((hour, hour + HOUR))
    return runs


def _within(column, ranges: list[Range]) -> sa.ColumnElement:
    """``column`` in any of the [start, end) ranges (end None: open), as OR-ed ranges an index can serve."""
    return sa.or_(
        *(column >= start if end is None else sa.and_(column >= start, column < end) for start, end in ranges)
    )


def _scoped(statement, column, client_id: int | None):
    """``statement`` limited to one tenant, or all of them when ``client_id`` is None."""
    return statement if client_id is None else statement.where(column == client_id)


def _recompute(rollup: Rollup, client_id: int | None, created: sa.ColumnElement, hours: sa.ColumnElement) -> None:
    """Replace the buckets selected by ``hours`` with sums over the source rows selected by ``created``."""
    source, target = rollup.source, rollup.target
    db.session.execute(_scoped(sa.delete(target).where(hours), target.client_id, client_id))
    hour = _hour_of(source.created_at)
    keys = [getattr(source, key) for key in rollup.keys]
    select = (
        sa.select(source.client_id, hour, *keys, *rollup.values.values())
        .where(rollup.where, created)
        .group_by(source.client_id, hour, *keys)
    )
    columns = ["client_id", "hour", *rollup.keys, *rollup.values]
    db.session.execute(sa.insert(target).from_select(columns, _scoped(select, source.client_id, client_id)))


def refresh(rollup: Rollup, *, rebuild: bool = False) -> int:
    """Bring the roll-up up to the last whole hour; returns how many tenant-hours were recomputed.

    Recomputes every (tenant, hour) bucket holding a source row created or changed (``updated_at``) since the
    previous refresh, however old the hour: a late delivery report moves its message's old bucket too. The
    first refresh, or ``rebuild``, recomputes everything. Source rows are never deleted but with their tenant
    (whose buckets cascade). Concurrent refreshes queue on the watermark row. Flushes; the caller commits.
    """
    sealed = floor_hour(utcnow())
    mark = db.session.scalars(
        sa.select(StatsWatermark).where(StatsWatermark.name == rollup.name).with_for_update()
    ).first()
    source, target = rollup.source, rollup.target
    if mark is None or rebuild:
        _recompute(rollup, None, source.created_at < sealed, sa.true())
        buckets = sa.select(target.client_id, target.hour).distinct().subquery()
        recomputed = db.session.scalar(sa.select(sa.func.count()).select_from(buckets))
    else:
        since = min(mark.sealed_until, sealed) - LATE_COMMIT_MARGIN
        dirty: dict[int, list[datetime]] = defaultdict(list)
        for client_id, hour in db.session.execute(
            sa.select(source.client_id, _hour_of(source.created_at))
            .where(source.updated_at >= since, source.created_at < sealed)
            .distinct()
        ):
            dirty[client_id].append(hour)
        for client_id, hours in dirty.items():
            runs = _ranges(hours)
            _recompute(rollup, client_id, _within(source.created_at, runs), _within(target.hour, runs))
        recomputed = sum(len(hours) for hours in dirty.values())
    if mark is None:
        db.session.add(StatsWatermark(name=rollup.name, sealed_until=sealed))
    else:
        mark.sealed_until = sealed
    db.session.flush()
    return recomputed


def _split(start: datetime, sealed: datetime | None) -> tuple[datetime | None, list[Range]]:
    """Where rows created since ``start`` are counted: roll-up hours from the first returned (up to ``sealed``;
    None: none) and the live [start, end) ranges, a partial first hour and everything from ``sealed`` on."""
    first = _ceil_hour(start)
    if sealed is None or first >= sealed:
        return None, [(start, None)]
    return first, [*([(start, first)] if start < first else []), (sealed, None)]


def _live(rollup: Rollup, client_id: int | None, ranges: list[Range]) -> sa.ColumnElement:
    """The source rows in ``ranges``."""
    source = rollup.source
    recent = _within(source.created_at, ranges)
    if not _is_postgresql():
        # Few rows are live (the point of the roll-up), which SQLite cannot tell from its statistics when the file
        # holds a tenant or two: it would walk the index of a GROUP BY column (status) through every row instead.
        recent = sa.func.unlikely(recent)
    where = sa.and_(rollup.where, recent)
    if client_id is not None:
        return sa.and_(where, source.client_id == client_id)
    # Across tenants no index leads with created_at; rows created in a range were updated in it or later.
    return sa.and_(where, source.updated_at >= min(start for start, _ in ranges))


def totals(
    rollup: Rollup,
    client_id: int | None,
    starts: list[datetime],
    keys: tuple[str, ...],
    value: str,
    sealed: datetime | None,
) -> list[dict[tuple, Any]]:
    """``value`` summed by ``keys`` over the rows created since each of ``starts`` (all tenants when ``client_id``
    is None), one dict per start, in two queries.

    Exact: whole hours before ``sealed`` (the roll-up's watermark) come from the roll-up, the rest (a partial
    first hour, the hours since the last refresh) from the source rows.
    """
    splits = [_split(start, sealed) for start in starts]
    results: list[dict[tuple, Any]] = [defaultdict(int) for _ in starts]
    target, source = rollup.target, rollup.source
    rolled = [first for first, _ in splits if first is not None]
    if rolled:
        column, hour = getattr(target, value), target.hour
        groups = [getattr(target, key) for key in keys]
        sums = [sa.func.sum(column).filter(hour >= first) if first else sa.null() for first, _ in splits]
        select = sa.select(*groups, *sums).where(hour >= min(rolled), hour < sealed).group_by(*groups)
        _add(results, db.session.execute(_scoped(select, target.client_id, client_id)), len(keys))
    groups = [getattr(source, key) for key in keys]
    sums = [rollup.values[value].filter(_within(source.created_at, live)) for _, live in splits]
    everything = sorted({span for _, live in splits for span in live}, key=lambda span: span[0])
    select = sa.select(*groups, *sums).where(_live(rollup, client_id, everything)).group_by(*groups)
    _add(results, db.session.execute(select), len(keys))
    return [dict(result) for result in results]


def _add(results: list[dict[tuple, Any]], rows, width: int) -> None:
    for row in rows:
        for result, total in zip(results, row[width:], strict=True):
            if total:
                result[tuple(row[:width])] += total


def _day_of(column, midnights: list[datetime], oldest: int) -> sa.ColumnElement:
    """SQL for the index of the local day ``column`` falls in, given the days' starts (UTC) and that it is not
    before day ``oldest``; newest day first, as most rows asked about are recent ones."""
    return sa.case(*((column >= midnights[n], n) for n in range(len(midnights) - 1, oldest, -1)), else_=oldest)


def daily(
    rollup: Rollup,
    client_id: int | None,
    first: datetime,
    tz_name: str,
    keys: tuple[str, ...],
    value: str,
    sealed: datetime | None,
) -> dict[date, dict[tuple, Any]]:
    """``value`` by local day (in ``tz_name``) and ``keys`` for rows created since ``first``, a local midnight.

    Exact in every zone, daylight saving included: days are cut at each local midnight's UTC instant, and an
    hour that straddles a local midnight (zones with half-hour offsets) is counted from the source rows, like
    the hours after the watermark ``sealed``. The last day is tomorrow, so every row has a later midnight.
    """
    tz = ZoneInfo(tz_name)
    days = [first.date() + timedelta(days=n) for n in range((utcnow() - first).days + 2)]
    midnights = [datetime.combine(day, time.min, tz).astimezone(UTC) for day in days]
    start, live = _split(first, sealed)
    result: dict[date, dict[tuple, Any]] = defaultdict(lambda: defaultdict(int))
    selects = []
    if start is not None:
        straddling = sorted({floor_hour(at) for at in midnights if start <= floor_hour(at) < sealed} - set(midnights))
        live[-1:-1] = [(hour, hour + HOUR) for hour in straddling]
        target = rollup.target
        groups = [_day_of(target.hour, midnights, 0), *(getattr(target, key) for key in keys)]
        select = sa.select(*groups, sa.func.sum(getattr(target, value))).where(
            target.hour >= start, target.hour < sealed
        )
        if straddling:
            select = select.where(target.hour.not_in(straddling))
        selects.append(_scoped(select, target.client_id, client_id).group_by(*groups))
    # Live rows start in the day of the earliest live range (usually yesterday or today).
    oldest = max(n for n, midnight in enumerate(midnights) if midnight <= min(begin for begin, _ in live))
    groups = [_day_of(rollup.source.created_at, midnights, oldest), *(getattr(rollup.source, key) for key in keys)]
    selects.append(sa.select(*groups, rollup.values[value]).where(_live(rollup, client_id, live)).group_by(*groups))
    for select in selects:
        for n, *key, total in db.session.execute(select):
            if total:
                result[days[n]][tuple(key)] += total
    return {d: dict(by_key) for d, by_key in result.items()}
