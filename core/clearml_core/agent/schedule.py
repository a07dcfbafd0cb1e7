"""Working hours: when a daemon pulls tasks (``--uptime`` / ``--downtime``, ``agent.uptime`` / ``agent.downtime``).

The format is clearml-agent's ``"<hours> <days>"``:

* ``<hours>``: ``17-20`` (from 17:00 up to 20:00), a single hour ``20`` (20:00 to midnight),
  ``20-00`` (to midnight), or a comma list ``20-00,00-08``. A span whose end is before its start
  (``22-02``) runs across midnight into the next day.
* ``<days>``: ``SUN``-``SAT`` in any case, spans (``MON-FRI``, ``FRI-MON`` wraps round the week) and
  comma lists (``SUN,TUE``). Omitted means every day.

Several entries are several windows: ``["17-20 SUN-TUE", "13-22 WED"]``. Uptime means "work only in
these windows", downtime "work except in these windows"; giving both is an error.

Overrides, strongest first (as clearml-agent documents them): a queue tagged ``force_workers:on``
/ ``force_workers:off`` (that queue only), then the worker's runtime property ``force: on|off``
until it expires, then the schedule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from clearml_core.errors import UserError

DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
FORCE_PROPERTY = "force"
QUEUE_FORCE_ON = "force_workers:on"
QUEUE_FORCE_OFF = "force_workers:off"

_ENTRY = re.compile(r"^\s*(?P<hours>[0-9,\-\s]+?)(?:\s+(?P<days>[A-Za-z,\-\s]+))?\s*$")


class ScheduleError(UserError):
    """An uptime / downtime entry cannot be read."""


@dataclass(frozen=True)
class Window:
    """One day's hours, ``start`` inclusive to ``end`` exclusive, 0 ≤ start < end ≤ 24."""

    day: int  # 0 = Sunday … 6 = Saturday, as clearml-agent counts
    start: int
    end: int

    def contains(self, moment: datetime) -> bool:
        return _weekday(moment) == self.day and self.start <= moment.hour < self.end


def _weekday(moment: datetime) -> int:
    return (moment.weekday() + 1) % 7  # Python: Monday = 0; here Sunday = 0


def _hour(text: str, entry: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ScheduleError(f"{entry!r}: {text!r} is not an hour (00-23)") from None
    if not 0 <= value <= 24:
        raise ScheduleError(f"{entry!r}: hour {value} is outside 00-23")
    return value


_FULL_DAYS = ("SUNDAY", "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY")


def _day(text: str, entry: str) -> int:
    name = text.strip().upper()
    if name in DAYS:
        return DAYS.index(name)
    if name in _FULL_DAYS:
        return _FULL_DAYS.index(name)
    raise ScheduleError(f"{entry!r}: {text!r} is not a day; use SUN, MON, TUE, WED, THU, FRI, SAT")


def _days(text: str | None, entry: str) -> list[int]:
    if not text or not text.strip():
        return list(range(7))
    days: list[int] = []
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            continue
        if "-" in part:
            first, _, last = part.partition("-")
            start, end = _day(first, entry), _day(last, entry)
            span = (end - start) % 7
            days.extend((start + offset) % 7 for offset in range(span + 1))
        else:
            days.append(_day(part, entry))
    return sorted(set(days))


def parse_entry(entry: str) -> list[Window]:
    """The windows one ``"<hours> <days>"`` entry describes."""
    match = _ENTRY.match(entry)
    if not match:
        raise ScheduleError(
            f'{entry!r} is not "<hours> <days>" (for example "17-20 MON-FRI" or "20-00,00-08 SUN")'
        )
    days = _days(match.group("days"), entry)
    windows: list[Window] = []
    for part in match.group("hours").replace(" ", "").split(","):
        if not part:
            continue
        if "-" in part:
            first, _, last = part.partition("-")
            start, end = _hour(first, entry), _hour(last, entry)
        else:
            start, end = _hour(part, entry), 24
        if start == 24:
            start = 0
        if end == 0:
            end = 24
        for day in days:
            if start < end:
                windows.append(Window(day, start, end))
            elif start > end:  # across midnight: the evening, then the next morning
                windows.append(Window(day, start, 24))
                windows.append(Window((day + 1) % 7, 0, end))
            else:
                raise ScheduleError(f"{entry!r}: the span {part} is empty")
    return windows


def _entries(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    return [str(item) for item in value if str(item).strip()]


@dataclass(frozen=True)
class WorkSchedule:
    """Uptime or downtime windows; no windows means always on."""

    windows: tuple[Window, ...] = ()
    is_uptime: bool = True
    entries: tuple[str, ...] = ()

    @classmethod
    def parse(
        cls, uptime: str | Sequence[str] | None = None, downtime: str | Sequence[str] | None = None
    ) -> WorkSchedule:
        up, down = _entries(uptime), _entries(downtime)
        if up and down:
            raise ScheduleError("set either uptime or downtime, not both (clearml-agent ignores both)")
        entries = up or down
        windows = tuple(window for entry in entries for window in parse_entry(entry))
        return cls(windows, is_uptime=not down, entries=tuple(entries))

    @property
    def always_on(self) -> bool:
        return not self.windows

    def is_on(self, moment: datetime) -> bool:
        """Whether the schedule alone lets the worker pull tasks at ``moment`` (local time)."""
        if not self.windows:
            return True
        return self.inside(moment) == self.is_uptime

    def inside(self, moment: datetime) -> bool:
        """Whether ``moment`` falls in one of the windows."""
        return any(window.contains(moment) for window in self.windows)

    def describe(self) -> str:
        if not self.windows:
            return "always on"
        kind = "uptime" if self.is_uptime else "downtime"
        return f"{kind}: " + "; ".join(self.entries)


def worker_force(properties: Mapping[str, Any] | Iterable[Any] | None, now: float) -> bool | None:
    """The worker's ``force`` runtime property: True (on), False (off) or None (absent / expired).

    Accepts ``{"force": {"value": "on", "expires": EPOCH}}``, ``{"force": "on"}`` or clearml's list
    form ``[{"key": "force", "value": "on", "expires": EPOCH}]``.
    """
    if not properties:
        return None
    value: Any = None
    expires: Any = None
    if isinstance(properties, Mapping):
        raw = properties.get(FORCE_PROPERTY)
        if isinstance(raw, Mapping):
            value, expires = raw.get("value"), raw.get("expires", raw.get("expiry"))
        else:
            value = raw
    else:
        for item in properties:
            key = getattr(item, "key", None) if not isinstance(item, Mapping) else item.get("key")
            if key == FORCE_PROPERTY:
                if isinstance(item, Mapping):
                    value, expires = item.get("value"), item.get("expires", item.get("expiry"))
                else:
                    value, expires = getattr(item, "value", None), getattr(item, "expires", None)
    if value is None:
        return None
    if expires not in (None, 0, "") and float(expires) <= now:
        return None
    text = str(value).strip().lower()
    if text in ("on", "true", "1", "yes"):
        return True
    if text in ("off", "false", "0", "no"):
        return False
    return None


def queue_force(tags: Iterable[str]) -> bool | None:
    """A queue's ``force_workers:on|off`` tag (off wins when both are set)."""
    tags = {str(tag).strip().lower() for tag in tags}
    if QUEUE_FORCE_OFF in tags:
        return False
    if QUEUE_FORCE_ON in tags:
        return True
    return None


@dataclass(frozen=True)
class Decision:
    pull: bool
    reason: str


def may_pull(
    schedule: WorkSchedule,
    moment: datetime,
    *,
    queue_tags: Iterable[str] = (),
    worker_properties: Mapping[str, Any] | Iterable[Any] | None = None,
    now: float | None = None,
) -> Decision:
    """Whether a worker may pull from one queue at ``moment``: queue tag, then worker force, then schedule."""
    forced_queue = queue_force(queue_tags)
    if forced_queue is not None:
        return Decision(forced_queue, f"queue tagged force_workers:{'on' if forced_queue else 'off'}")
    forced_worker = worker_force(worker_properties, moment.timestamp() if now is None else now)
    if forced_worker is not None:
        return Decision(forced_worker, f"worker runtime property force:{'on' if forced_worker else 'off'}")
    if schedule.always_on:
        return Decision(True, "no working hours set")
    inside = schedule.inside(moment)
    return Decision(schedule.is_on(moment), f"{schedule.describe()} ({'inside' if inside else 'outside'})")


_HOURS_ONLY = re.compile(r"^[0-9,\-]+$")
_DAYS_ONLY = re.compile(r"^[A-Za-z,\-]+$")


def join_entries(tokens: Iterable[str]) -> list[str]:
    """Entries from command-line words: ``17-20 TUE`` typed without quotes arrives as two words,
    which are joined back into one entry; quoted entries pass through."""
    entries: list[str] = []
    for token in tokens:
        token = token.strip()
        if not token:
            continue
        if entries and _DAYS_ONLY.match(token) and _HOURS_ONLY.match(entries[-1]):
            entries[-1] = f"{entries[-1]} {token}"
        else:
            entries.append(token)
    return entries
