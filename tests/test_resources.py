"""Every memory estimate, against its closed form, and the refusals they drive."""

import pytest

from pyro_vae.errors import ConfigError, ResourceError
from pyro_vae.plots import MIN_SIDE
from pyro_vae.resources import (check_memory, check_parameters, parameter_bound, physical_memory, sample_bytes,
                                step_bytes)


def test_step_bytes_is_four_bytes_per_value_per_point_and_particle():
    """points · particles · 4 · (4·D + 2·W + 3·K·L)."""
    assert step_bytes(3, 2, dim=10, units=5, components=4, latent=2) == 3 * 2 * 4 * (4 * 10 + 2 * 5 + 3 * 4 * 2)


def test_sample_bytes_counts_the_samples_and_for_images_their_upscaled_grid():
    side = max(MIN_SIDE, 8) + 2
    assert sample_bytes(5, (1, 8, 8)) == 5 * 4 * (64 + 2 * 3 * side * side)
    assert sample_bytes(5, (7,)) == 5 * 4 * 7  # vectors: no grid


def test_parameter_bound_connects_each_list_of_widths_to_the_input():
    """Σ wᵢwᵢ₊₁ + max(w)·D for a list of widths, n for a single size, nothing for other values."""
    tree = {"network": {"hidden_dims": [4, 3]}, "latent_dim": 2, "flag": True, "name": "vae"}
    assert parameter_bound(tree, 10) == 4 * 3 + 4 * 10 + 2


def test_too_many_parameters_or_bytes_are_refused_in_one_line():
    if physical_memory() is None:
        pytest.skip("the OS does not report the RAM")
    with pytest.raises(ConfigError, match="model.network"):
        check_parameters(physical_memory())
    check_parameters(1000)
    with pytest.raises(ResourceError, match="-n 9.*limit 1 KB.*give -n <= 1"):
        check_memory(2000, "-n 9", "give -n <= 1", limit=1000)
