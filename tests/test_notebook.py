import random

import pytest
import torch

from transformer18 import notebook


def test_set_seed_makes_every_generator_repeat():
    notebook.set_seed(3)
    first = (random.random(), torch.rand(3))
    notebook.set_seed(3)
    second = (random.random(), torch.rand(3))
    assert first[0] == second[0]
    torch.testing.assert_close(first[1], second[1])


def test_set_seed_returns_a_seeded_generator():
    a = torch.rand(4, generator=notebook.set_seed(7))
    b = torch.rand(4, generator=notebook.set_seed(7))
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("bad", [-1, 1.5, "0"])
def test_set_seed_rejects_bad_seeds(bad):
    with pytest.raises(ValueError, match="seed"):
        notebook.set_seed(bad)


def test_device_prefers_what_is_asked_and_falls_back_to_cpu():
    assert notebook.device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert notebook.device().type == expected


def test_building_book_follows_the_environment(monkeypatch):
    monkeypatch.delenv(notebook.BOOK_BUILD_ENV, raising=False)
    assert not notebook.building_book()
    monkeypatch.setenv(notebook.BOOK_BUILD_ENV, "1")
    assert notebook.building_book()


def test_not_in_colab_here():
    assert notebook.IN_COLAB is False


def test_setup_seeds_and_returns_a_device():
    dev = notebook.setup(seed=5)
    a = torch.rand(2)
    notebook.setup(seed=5)
    torch.testing.assert_close(a, torch.rand(2))
    assert isinstance(dev, torch.device)
