"""Checkers for the capstone's data (part 1): a split by day, and French dates read by hand."""

from __future__ import annotations

import datetime as dt

from ..dates import format_date
from ._core import checker, diagnose, expect, unchanged

__all__ = ["check_split_days", "check_french_dates"]


def _days(n: int, start: dt.date = dt.date(2001, 3, 4)) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range(n)]


@checker("split_by_day")
def check_split_days(split_by_day) -> None:
    """Check ``split_by_day(days, test_fraction, seed) -> (train_days, test_days)``: disjoint, together every
    day once, ``max(1, round(len(days) · test_fraction))`` test days, random but fixed by the seed."""
    for n, fraction in ((200, 0.1), (37, 0.05), (9, 0.05)):
        days = _days(n)
        with unchanged("Do not shuffle the caller's list in place: shuffle a copy.", days):
            train, test = split_by_day(days, fraction, 0)
        train, test = list(train), list(test)
        expect(len(set(test)) == len(test) and len(set(train)) == len(train),
               "A day appears twice in one part: draw without replacement (shuffle, then cut).")
        expect(not set(train) & set(test),
               "Some days are in both parts: a test day must never be a training day, or the test measures memory.")
        expect(set(train) | set(test) == set(days) and len(train) + len(test) == n,
               "The two parts together must hold every day exactly once: days are missing.")
        expected = max(1, round(n * fraction))
        expect(len(test) == expected, f"With {n} days and test_fraction={fraction} the test part needs {expected} "
                                      f"days (max(1, round(n · fraction))), got {len(test)}.")
    days = _days(200)
    first, again = split_by_day(days, 0.1, 3), split_by_day(days, 0.1, 3)
    expect(sorted(first[1]) != days[-20:] and sorted(first[1]) != days[:20],
           "The test days are the first or last days of the list: shuffle before you cut, or the test asks "
           "only about one season.")
    expect(sorted(first[1]) == sorted(again[1]),
           "The same seed gave two different splits: use random.Random(seed), not the global generator unseeded.")
    expect(sorted(first[1]) != sorted(split_by_day(days, 0.1, 4)[1]),
           "Seeds 3 and 4 gave the same split: the seed must decide which days are held out.")


_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre")


@checker("french_to_iso")
def check_french_dates(french_to_iso) -> None:
    """Check ``french_to_iso("21 novembre 2026") == "2026-11-21"`` on every day of several years (CLDR's
    fr_FR long style, as ``transformer18.dates.format_date`` writes it)."""
    for year in (1950, 1968, 2000, 2049):
        for day in (dt.date(year, 1, 1) + dt.timedelta(days=i) for i in range(365 + (year % 4 == 0))):
            text, iso = format_date(day, "fr_FR", "long"), day.isoformat()
            got = french_to_iso(text)
            expect(isinstance(got, str), f"Return the ISO date as a str, got {type(got).__name__}.")
            y, m, d = iso.split("-")
            unpadded = f"{text!r} → {got!r}: pad the month and the day to two digits, {iso!r}."
            diagnose(got, iso, [
                (f"{y}-{int(m)}-{int(d)}", unpadded),
                (got.replace("-", "") == f"{y}{int(m)}{int(d)}", unpadded),
                (f"{y}-{d}-{m}", f"{text!r} → {got!r}: the month comes before the day in ISO 8601, {iso!r}."),
                (got.startswith(f"{y}-00-"), f"{text!r} → {got!r}: the month is off by one; janvier is month 01, "
                                             "not 00."),
            ], f"{text!r} should become {iso!r}, got {got!r}. Month names: {', '.join(_MONTHS)}.")
