"""Tumbling windows on the site's calendar: when the current hour, day and week began.

`this_period(event, day)` counts since local midnight in the site's time zone (PZ_SITE_TIMEZONE),
not over the last 24 hours; weeks begin on Monday. The edge works the starts out once a minute and
hands them to the rules in the request context; without one (tests, `pz rules test`) UTC is used.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

PERIODS = ("hour", "day", "week")
PERIOD_SECONDS = {"hour": 3600, "day": 86_400, "week": 7 * 86_400}
PERIOD_STARTS = "period_starts"  # the context entry: period -> epoch second it began


def period_starts(now_s: float, zone: tzinfo = UTC) -> dict[str, int]:
    local = datetime.fromtimestamp(now_s, zone)
    hour = local.replace(minute=0, second=0, microsecond=0)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    week = day - timedelta(days=local.weekday())
    # Through the wall clock of each start, so that a day with a daylight-saving change has its true length.
    return {
        "hour": int(hour.timestamp()),
        "day": int(day.replace(tzinfo=None).replace(tzinfo=zone).timestamp()),
        "week": int(week.replace(tzinfo=None).replace(tzinfo=zone).timestamp()),
    }
