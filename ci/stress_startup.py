"""Run in every notebook kernel of ``ci/stress.sh`` (as an IPython start-up file) and of
``ci/seed_sweep.py`` (as the first cell): sets the thread count and shifts every seed the notebooks set.

``T18_STRESS_THREADS=n`` → ``torch.set_num_threads(n)``. ``T18_STRESS_SEED_SHIFT=k`` → ``torch.manual_seed``,
``torch.Generator().manual_seed``, ``random.seed`` and ``random.Random(seed)`` add ``k`` to every integer
seed (the course's ``set_seed`` calls these), so a notebook trains from other initial weights, batches and data.
"""

import os
import random

import torch

if os.environ.get("T18_STRESS_THREADS"):
    torch.set_num_threads(int(os.environ["T18_STRESS_THREADS"]))
if os.environ.get("T18_STRESS_SEED_SHIFT"):
    _shift = int(os.environ["T18_STRESS_SEED_SHIFT"])
    _manual_seed = torch.manual_seed

    def _shifted_manual_seed(seed):
        return _manual_seed(int(seed) + _shift)

    class _ShiftedGenerator(torch.Generator):
        def manual_seed(self, seed):
            return super().manual_seed(int(seed) + _shift)

    class _ShiftedRandom(random.Random):
        def seed(self, a=None, version=2):
            super().seed(a + _shift if isinstance(a, int) else a, version)

    _random_seed = random.seed

    def _shifted_random_seed(a=None, version=2):
        _random_seed(a + _shift if isinstance(a, int) else a, version)

    torch.manual_seed = torch.random.manual_seed = _shifted_manual_seed
    torch.Generator = _ShiftedGenerator
    random.Random = _ShiftedRandom
    random.seed = _shifted_random_seed
