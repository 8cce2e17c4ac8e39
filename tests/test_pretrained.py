"""transformer18.pretrained: the shipped date translator loads offline with weights_only=True, translates,
matches its record, and draws its attention."""

import hashlib
import json
from unittest import mock

import pytest
import torch

from transformer18 import pretrained
from transformer18.date_translator import DateTranslator, date_config
from transformer18.dates import make_date_data
from transformer18.model import Transformer


@pytest.fixture(scope="module")
def shipped():
    return pretrained.date_translator()


def test_the_checkpoint_is_in_the_package_and_matches_its_record():
    path = pretrained.checkpoint_path()
    record = json.loads(path.with_suffix(".json").read_text())
    assert path.stat().st_size < 5e6  # a few MB at most
    assert hashlib.sha256(path.read_bytes()).hexdigest() == record["sha256"]
    assert record["stopped_by"] == "target" and record["validation_exact_match"] >= 0.995
    assert record["test_exact_match"] >= 0.99


def test_it_loads_with_weights_only_and_never_downloads(shipped):
    with mock.patch("torch.load", wraps=torch.load) as load, mock.patch("urllib.request.urlopen") as urlopen:
        pretrained.date_translator()
    assert load.call_args.kwargs["weights_only"] is True and not urlopen.called
    assert isinstance(shipped, DateTranslator) and isinstance(shipped.model, Transformer)
    assert shipped.model.config == date_config(make_date_data(0))


def test_it_translates_the_book_s_examples(shipped):
    assert shipped.translate(["21 novembre 2026", "2026年11月21日", "3 мая 1968\u202fг."]) == [
        "2026-11-21", "2026-11-21", "1968-05-03"]


def test_it_is_on_the_explicit_path_so_its_attention_can_be_drawn(shipped):
    assert not any(getattr(m, "fused", False) for m in shipped.model.modules())
    maps = shipped.attention_maps("21 novembre 2026")
    for kind in ("cross", "encoder", "decoder"):
        fig = pretrained.plot_attention(maps, "21 novembre 2026", kind, layer=0, head=1)
        assert fig.axes and fig.axes[0].images
    labels = [t.get_text() for t in pretrained.plot_attention(maps, "21 novembre 2026").axes[0].get_xticklabels()]
    assert labels == list("21␣novembre␣2026")
    with pytest.raises(ValueError, match="kind must be"):
        pretrained.plot_attention(maps, "21 novembre 2026", "self")
