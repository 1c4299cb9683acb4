"""Per-instance input normalisation: scale invariance and the values it gives."""

import numpy as np
import pytest
import torch

from harness.errors import HarnessError
from harness.train.normalise import make_inputs, make_targets

STATS = {"median_source_norm": 0.8, "coef_scale": [1.0, 2.0, 0.5, 1.5, 1e-3, 0.0]}


def test_normalisation_is_scale_invariant():
    rng = np.random.default_rng(0)
    source = rng.standard_normal((4, 16, 16))
    coef = rng.uniform(0.5, 2.0, (4, 6))
    x = make_inputs(source, coef, STATS)
    assert x.shape == (4, 7, 16, 16) and x.dtype == torch.float32
    assert torch.equal(x[:, 6], torch.zeros(4, 16, 16))  # scale 0: a channel this system does not use
    # 10 f alone: same normalised source; 10 f and 10 K: same whole input
    source_10, coef_10 = source.copy(), coef.copy()
    source_10[1] *= 10
    torch.testing.assert_close(make_inputs(source_10, coef, STATS)[:, 0], x[:, 0])
    coef_10[1] *= 10
    torch.testing.assert_close(make_inputs(source_10, coef_10, STATS), x)
    # torch inputs give the same result
    torch.testing.assert_close(make_inputs(torch.from_numpy(source), torch.from_numpy(coef), STATS), x)
    assert make_targets(source).shape == (4, 1, 16, 16)
    with pytest.raises(HarnessError, match="make_inputs needs source"):
        make_inputs(source, coef[:, :5], STATS)


def test_normalisation_values():
    # constant sources: ||f|| = |value|; 0.8 is the median norm (s = 1), 1.6 has s = 2
    source = np.stack([np.full((8, 8), 0.8), np.full((8, 8), -1.6)])
    coef = np.array([[1.0, 1.0, 1.0, 3.0, 2e-3, 0.0], [1.0, 1.0, 1.0, 3.0, 2e-3, 0.0]])
    x = make_inputs(source, coef, STATS)
    torch.testing.assert_close(x[:, 0, 0, 0], torch.tensor([0.8, -0.8]))
    expected = torch.tensor([1.0, 0.5, 2.0, 2.0, 2.0, 0.0])
    torch.testing.assert_close(x[:, 1:, 3, 5], torch.stack([expected, expected / 2]))
