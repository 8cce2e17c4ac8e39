"""transformer18.dates: CLDR formats, the held-out-by-day split, the dataset and the vocabularies."""

import datetime as dt

import pytest
import torch

from transformer18.dates import (
    FIRST_DAY,
    FORMATS,
    LAST_DAY,
    LOCALES,
    DatePairs,
    format_date,
    make_date_data,
    source_vocab,
    split_days,
    target_vocab,
)

DAY = dt.date(2026, 11, 21)


@pytest.mark.parametrize("locale, fmt, expected", [
    ("en_US", "medium", "Nov 21, 2026"), ("fr_FR", "long", "21 novembre 2026"), ("de_DE", "medium", "21.11.2026"),
    ("es_ES", "long", "21 de noviembre de 2026"), ("zh_CN", "long", "2026年11月21日"),
    ("ru_RU", "long", "21 ноября 2026\u202fг."), ("en_US", "full", "Saturday, November 21, 2026"),
])
def test_format_date_writes_cldr_dates(locale, fmt, expected):
    assert format_date(DAY, locale, fmt) == expected


def test_six_locales_with_chinese_and_three_styles():
    assert len(LOCALES) >= 6 and "zh_CN" in LOCALES and set(FORMATS) == {"medium", "long", "full"}
    texts = {format_date(DAY, loc, fmt) for loc in LOCALES for fmt in FORMATS}
    assert len(texts) >= 16  # zh_CN writes medium and long alike


@pytest.mark.parametrize("args, match", [
    ((DAY, "xx_YY", "long"), "unknown locale"), ((DAY, "fr_FR", "short"), "fmt must be one of"),
    (("2026-11-21", "fr_FR", "long"), "datetime.date"),
])
def test_format_date_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        format_date(*args)


def test_split_is_disjoint_complete_and_seeded():
    split = split_days(seed=0)
    parts = [set(split.train), set(split.valid), set(split.test)]
    assert sum(map(len, parts)) == len(set().union(*parts)) == (LAST_DAY - FIRST_DAY).days + 1
    assert len(split.test) == len(split.valid) == round(36_525 * 0.05)
    assert split == split_days(seed=0) and split.test != split_days(seed=1).test
    assert list(split.test) == sorted(split.test)


@pytest.mark.parametrize("kwargs, match", [
    ({"test_fraction": 0}, "test_fraction"), ({"valid_fraction": 1.5}, "valid_fraction"),
    ({"valid_fraction": 0.5, "test_fraction": 0.5}, "leave days"),
    ({"first": dt.date(2000, 1, 2), "last": dt.date(2000, 1, 1)}, "comes before"),
    ({"first": dt.date(2000, 1, 1), "last": dt.date(2000, 1, 2)}, "too few"),
])
def test_split_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        split_days(**kwargs)


def test_date_pairs_index_days_then_styles():
    days = [dt.date(2001, 1, 1), dt.date(2001, 1, 2)]
    pairs = DatePairs(days, ("fr_FR", "zh_CN"), ("long",))
    assert len(pairs) == 4 and isinstance(pairs, torch.utils.data.Dataset)
    assert pairs[0] == ("1 janvier 2001", "2001-01-01")
    assert pairs[1] == ("2001年1月1日", "2001-01-01")
    assert pairs[3] == ("2001年1月2日", "2001-01-02") == pairs[-1]
    with pytest.raises(IndexError):
        pairs[4]
    assert pairs.sample(10, seed=0) == pairs.sample(10, seed=0) and len(pairs.sample(10)) == 4


def test_date_pairs_refuse_bad_styles_at_construction():
    with pytest.raises(ValueError, match="unknown locale"):
        DatePairs([DAY], ("fr_FR", "nowhere"))
    with pytest.raises(ValueError, match="at least one day"):
        DatePairs([], LOCALES)


def test_vocabularies_cover_every_character_of_every_day():
    data = make_date_data(seed=0, first=dt.date(1990, 1, 1), last=dt.date(2009, 12, 31))
    for part in (data.train, data.valid, data.test):
        for text, iso in part.sample(500, seed=2):
            assert all(c in data.src_vocab for c in text) and all(c in data.tgt_vocab for c in iso)
    assert data.src_vocab.tokens == source_vocab().tokens and len(data.src_vocab) == 90
    assert target_vocab().tokens[4:] == list("0123456789-")


def test_no_test_day_is_seen_in_training_in_any_style():
    data = make_date_data(seed=3, first=dt.date(2000, 1, 1), last=dt.date(2000, 12, 31))
    train_isos = {data.train[i][1] for i in range(0, len(data.train), len(data.train.styles))}
    test_isos = {data.test[i][1] for i in range(len(data.test))}
    assert test_isos and not train_isos & test_isos


def test_max_source_length_is_the_longest_text():
    data = make_date_data(seed=0)
    assert data.max_source_length == 35 == len(format_date(dt.date(2026, 9, 30), "es_ES", "full"))
