"""Seed 003's `frequency` and `time_config` as a cron expression, read as its scheduler
(APScheduler's `CronTrigger`) read them, in the schedule's time zone:

| frequency | time_config | cron |
|---|---|---|
| `hourly` | `{minute}` | `M * * * *` |
| `daily` | `{hour, minute}` | `M H * * *` |
| `weekly` | `{day: "monday", hour, minute}` | `M H * * mon` |
| `monthly` | `{day: 15, hour, minute}` | `M H 15 * *` |

`hour` and `minute` default to 0; `day` is required where it appears. Any other frequency
or key is refused with a sentence: natscron never guesses at a setting.
"""

from collections.abc import Mapping

from natscron.migration.legacy_values import LegacyValueError

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
KEYS = {
    "hourly": ("minute",),
    "daily": ("hour", "minute"),
    "weekly": ("day", "hour", "minute"),
    "monthly": ("day", "hour", "minute"),
}


def frequency_cron(frequency: object, time_config: object) -> str:
    if not isinstance(frequency, str) or frequency.lower() not in KEYS:
        raise LegacyValueError(
            f"frequency {frequency!r} is not one of {', '.join(KEYS)}; natscron cannot map it"
        )
    frequency = frequency.lower()
    if not isinstance(time_config, Mapping):
        raise LegacyValueError(f"time_config {time_config!r} is not a JSON object")
    unknown = sorted(set(time_config) - set(KEYS[frequency]))
    if unknown:
        raise LegacyValueError(
            f"time_config of a {frequency} schedule has {', '.join(map(str, unknown))};"
            f" natscron reads only {', '.join(KEYS[frequency])}"
        )
    minute = _number(time_config, "minute", 0, 59)
    if frequency == "hourly":
        return f"{minute} * * * *"
    hour = _number(time_config, "hour", 0, 23)
    if frequency == "daily":
        return f"{minute} {hour} * * *"
    if frequency == "weekly":
        return f"{minute} {hour} * * {_weekday(time_config.get('day'))}"
    if time_config.get("day") is None:
        raise LegacyValueError("time_config of a monthly schedule has no day")
    return f"{minute} {hour} {_number(time_config, 'day', 1, 31)} * *"


def _number(time_config: Mapping[str, object], key: str, low: int, high: int) -> int:
    value = time_config.get(key, 0 if key != "day" else None)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise LegacyValueError(f"time_config {key} {value!r} is not a whole number {low}-{high}")
    return value


def _weekday(value: object) -> str:
    """The cron name of a day given by name (`monday`, `Mon`)."""
    if isinstance(value, str):
        for day in WEEKDAYS:
            if value.lower() in (day, day[:3]):
                return day[:3]
    raise LegacyValueError(
        f"time_config day {value!r} of a weekly schedule is not a day's name (monday ... sunday)"
    )
