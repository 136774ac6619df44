"""The hard scene family: exact geometry at median depth 1, view-dependent shading, family key."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.sources.synthetic import SyntheticScene, canonical_K, render_depth
from benchmark.sources.synthetic_hard import HardScene, make_family_scene, make_hard_scene


@pytest.fixture(scope="module")
def scene() -> HardScene:
    return make_hard_scene(0)


def test_hard_scene_is_scaled_to_median_depth_one_with_a_distant_background(scene):
    K = canonical_K(160, 90)
    depth = render_depth(scene, K, scene.base_w2c, 160, 90)
    assert abs(float(np.median(depth[np.isfinite(depth)])) - 1.0) < 0.03
    # the far wall is pushed back: part of the view lies well beyond the median depth
    assert np.nanmax(depth[np.isfinite(depth)]) > 3.0


def test_shading_changes_with_the_viewing_direction_on_glossy_surfaces(scene):
    glossy = int(torch.nonzero(scene._gloss > 0)[0])
    ids = torch.tensor([glossy, glossy])
    t = torch.tensor([1.0, 1.0])
    d = torch.tensor([[0.1, 1.0, 0.0], [0.6, 1.0, 0.3]])  # two views of (nearly) one point
    C = torch.zeros(3)
    dx = dy = torch.tensor([1e-3, 0.0, 0.0])
    hard = scene._shade(ids, t, d, C, dx, dy)
    base = SyntheticScene._shade(scene, ids, t, d, C, dx, dy)  # view-independent texture
    ratio = (hard / base.clamp(min=1)).mean(dim=1)
    assert abs(float(ratio[0] - ratio[1])) > 0.02


def test_family_key_selects_the_generator():
    assert isinstance(make_family_scene({"family": "hard", "seed": 1}), HardScene)
    rooms = make_family_scene({"seed": 1})
    assert not isinstance(rooms, HardScene)
    with pytest.raises(ValueError, match="unknown scene family"):
        make_family_scene({"family": "caves", "seed": 1})
