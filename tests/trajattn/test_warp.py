"""Depth warping on analytic scenes: exact sub-pixel shifts and honest hole masks."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from trajattn.warp import warp_image

H, W = 40, 56
K = np.array([[60.0, 0, W / 2], [0, 60.0, H / 2], [0, 0, 1]])


def _w2c_truck(tx: float) -> np.ndarray:
    w2c = np.tile(np.eye(4), (2, 1, 1))
    w2c[1, 0, 3] = -tx
    return w2c


def test_truck_over_a_plane_is_a_subpixel_shift():
    rng = np.random.default_rng(0)
    image = ndimage.gaussian_filter(rng.uniform(0, 255, (H, W)), 1.5)
    depth = np.full((H, W), 2.0)
    tx = 0.07  # shift = 60 * 0.07 / 2 = 2.1 px to the left
    warped, valid = warp_image(image, depth, K, _w2c_truck(tx))
    np.testing.assert_allclose(warped[0], image, atol=1e-9)
    assert valid[0].all()
    # Independent truth: scipy's linear-interpolation shift of the image.
    expected = ndimage.shift(image, (0, -2.1), order=1, mode="nearest")
    cols = np.arange(W) + 0.5
    seen = (cols + 2.1 < W - 0.5)[None].repeat(H, 0)  # source position inside the image
    np.testing.assert_array_equal(valid[1][:, :-4], seen[:, :-4])
    assert not valid[1][:, -2:].any()  # disoccluded strip at the right border
    np.testing.assert_allclose(warped[1][seen], expected[seen], atol=1e-6)


def test_background_behind_a_box_is_a_hole_not_a_smear():
    image = np.zeros((H, W, 3))
    image[..., 0] = 200.0
    depth = np.full((H, W), 3.0)
    depth[10:30, 20:36] = 1.0
    image[10:30, 20:36] = (0.0, 0.0, 250.0)
    warped, valid = warp_image(image, depth, K, _w2c_truck(0.2))
    # Box shifts by 12 px left (cols 8..24), wall by 4: target wall column j comes from
    # source column j + 4, hidden behind the box for j in 16..31; cols 24..31 are uncovered
    # by the box in frame 1 and so are holes (edge columns left out).
    assert not valid[1][12:28, 25:31].any()
    assert valid[1][12:28, 33:50].all()
    np.testing.assert_allclose(warped[1][12:28, 33:50] - [200.0, 0.0, 0.0], 0, atol=1e-6)
    # Where the box is, the warp shows the box colour.
    np.testing.assert_allclose(warped[1][12:28, 9:23] - [0.0, 0.0, 250.0], 0, atol=1e-6)
    assert valid[1][12:28, 9:23].all()
