"""The capstone data checkers accept the reference solutions and reject known-wrong code with the right hint."""

import datetime as dt
import random

import pytest
from conftest import rejects, variant

from transformer18 import checks

MONTHS = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
          "novembre", "décembre"]


def split_by_day(days, test_fraction, seed, *, in_place=False, replace=False, overlap=False, drop=False,
                 rounding=round, unseeded=False, no_shuffle=False):
    shuffled = days if in_place else list(days)
    if not no_shuffle:
        (random.shuffle if unseeded else random.Random(seed).shuffle)(shuffled)
    n_test = max(1, rounding(len(shuffled) * test_fraction))
    if replace:
        rng = random.Random(seed)
        test = [rng.choice(shuffled) for _ in range(n_test)]
        return [d for d in shuffled if d not in test], test
    if overlap:
        return shuffled, shuffled[:n_test]
    if drop:
        return shuffled[n_test + 1:], shuffled[:n_test]
    return shuffled[n_test:], shuffled[:n_test]


def test_a_split_that_ignores_a_seed_but_shuffles_is_rejected():
    fixed = random.Random(99)
    state = fixed.getstate()

    def same_every_time(days, fraction, seed):
        fixed.setstate(state)
        shuffled = list(days)
        fixed.shuffle(shuffled)
        n = max(1, round(len(shuffled) * fraction))
        return shuffled[n:], shuffled[:n]

    rejects(checks.check_split_days, same_every_time, "Seeds 3 and 4 gave the same split")


def french_to_iso(text, *, pad=True, swap=False, off_by_one=False, first_only=False):
    day, month, year = text.split()
    m = MONTHS.index(month) + (0 if off_by_one else 1)
    if first_only and m == 12:
        m = 11
    d = int(day)
    if not pad:
        return f"{year}-{m}-{d}"
    return f"{year}-{d:02d}-{m:02d}" if swap else f"{year}-{m:02d}-{d:02d}"


def test_the_references_pass(accepts):
    accepts(checks.check_split_days, split_by_day)
    accepts(checks.check_french_dates, french_to_iso)


SPLIT, FRENCH = checks.check_split_days, checks.check_french_dates


@pytest.mark.parametrize("check, wrong, hint", [
    (SPLIT, variant(split_by_day, in_place=True), "in place"),
    (SPLIT, variant(split_by_day, replace=True), "twice in one part"),
    (SPLIT, variant(split_by_day, overlap=True), "in both parts"),
    (SPLIT, variant(split_by_day, drop=True), "days are missing"),
    (SPLIT, variant(split_by_day, rounding=int), "test part needs"),
    (SPLIT, variant(split_by_day, unseeded=True), "same seed gave two different splits"),
    (SPLIT, variant(split_by_day, no_shuffle=True), "first or last days"),
    (FRENCH, variant(french_to_iso, pad=False), "pad the month and the day"),
    (FRENCH, variant(french_to_iso, swap=True), "month comes before the day"),
    (FRENCH, variant(french_to_iso, off_by_one=True), "off by one"),
    (FRENCH, variant(french_to_iso, first_only=True), "should become '1950-12-01'"),
    (FRENCH, lambda text: dt.date(2000, 1, 1), "as a str"),
])
def test_wrong_code_is_rejected_with_the_right_hint(check, wrong, hint):
    rejects(check, wrong, hint)
