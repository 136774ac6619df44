"""Track scores (benchmark/metrics/tracks.py) on hand-made tracks and images."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmark.metrics.tracks import (
    apply_pixel_map,
    blur,
    colour_persistence,
    end_point_error,
    grid_subsample,
    pixel_map,
    sample_colours,
)
from methods.framing import fit_to_resolution
from trajattn.flow_tracks import grid_points


def tracks_and_visible():
    """3 frames x 3 points; the reference."""
    ref = np.array([
        [[0.5, 0.5], [5.5, 5.5], [9.5, 1.5]],
        [[1.5, 0.5], [6.5, 5.5], [9.5, 2.5]],
        [[2.5, 0.5], [7.5, 5.5], [9.5, 3.5]],
    ])
    return ref, np.ones((3, 3), bool)


def test_epe_of_known_offsets_frames_one_on():
    ref, vis = tracks_and_visible()
    out = ref.copy()
    out[0] += 100.0  # frame 0 never counts
    out[1:, 0] += [3.0, 4.0]  # 5 px
    out[1:, 2] += [6.0, 8.0]  # 10 px; point 1 exact
    epe = end_point_error(ref, vis, out, vis)
    assert epe.num == 6 and epe.fraction == 1.0
    assert epe.median == pytest.approx(5.0)  # sorted: 0, 0, 5, 5, 10, 10
    assert epe.mean == pytest.approx(5.0)


def test_epe_counts_points_visible_in_both_only():
    ref, vis = tracks_and_visible()
    out = ref.copy()
    out[1:, 2] += [30.0, 40.0]  # 50 px, but ...
    out_vis = vis.copy()
    out_vis[1:, 2] = False  # ... lost by the output's tracker
    ref_vis = vis.copy()
    ref_vis[2, 0] = False  # and one reference pair is invalid
    epe = end_point_error(ref, ref_vis, out, out_vis)
    assert epe.num == 3 and epe.median == 0.0 and epe.mean == 0.0
    assert epe.fraction == pytest.approx(3 / 5)
    d = epe.as_dict("x")
    assert d == {"x": 0.0, "x_mean": 0.0, "x_points": 3, "x_fraction": pytest.approx(0.6)}


def test_epe_without_common_points_is_nan_and_shapes_are_checked():
    ref, vis = tracks_and_visible()
    epe = end_point_error(ref, vis, ref, np.zeros_like(vis))
    assert epe.num == 0 and math.isnan(epe.median) and math.isnan(epe.mean)
    with pytest.raises(ValueError, match="differ in shape"):
        end_point_error(ref, vis, ref[:, :2], vis[:, :2])
    with pytest.raises(ValueError, match="visible"):
        end_point_error(ref, vis[:, :2], ref, vis)


def test_sample_colours_at_pixel_centres_and_between():
    image = np.zeros((4, 5, 3), np.uint8)
    image[..., 0] = np.arange(5)[None, :] * 10  # red = 10 * column
    image[..., 1] = np.arange(4)[:, None] * 20  # green = 20 * row
    xy = np.array([[0.5, 0.5], [3.5, 2.5], [1.0, 0.5], [2.0, 2.0]])
    colours = sample_colours(image, xy)
    np.testing.assert_allclose(colours[0], [0, 0, 0])
    np.testing.assert_allclose(colours[1], [30, 40, 0])
    np.testing.assert_allclose(colours[2], [5, 0, 0], atol=1e-4)  # half-way columns 0 and 1
    np.testing.assert_allclose(colours[3], [15, 30, 0], atol=1e-4)  # half-way in x and y
    with pytest.raises(ValueError, match="finite"):
        sample_colours(image, np.array([[np.nan, 1.0]]))


def test_colour_persistence_by_hand():
    """Two points over 3 frames: point 0 keeps its colour, point 1 turns 30 darker in every
    channel from frame 1 on; frame 0 never counts."""
    frames = np.full((3, 6, 6, 3), 100, np.uint8)
    frames[0] = 0  # frame 0 ignored
    frames[1:, 4, 4] = 70  # where point 1 is in frames 1 and 2
    tracks = np.array([[[1.5, 1.5], [4.5, 4.5]]] * 3)
    visible = np.ones((3, 2), bool)
    first = np.array([[100.0, 100, 100], [100, 100, 100]])
    assert colour_persistence(frames, tracks, visible, first) == pytest.approx(15.0)
    assert colour_persistence(frames, tracks, visible, first, points=[False, True]) == 30.0
    assert colour_persistence(frames, tracks, visible, first, points=[True, False]) == 0.0
    visible[1:, 1] = False  # the changed point is never visible: nothing to count against
    assert colour_persistence(frames, tracks, visible, first) == 0.0
    assert math.isnan(colour_persistence(frames, tracks, visible, first, points=[False, True]))


def test_blur_keeps_flat_colour_and_averages_detail():
    flat = np.full((20, 20, 3), 77, np.uint8)
    np.testing.assert_allclose(blur(flat, 2.0), 77, atol=1e-3)
    checker = (np.indices((20, 20)).sum(0) % 2 * 200).astype(np.uint8)[..., None].repeat(3, -1)
    assert np.abs(blur(checker, 2.0)[5:15, 5:15] - 100).max() < 2  # the mean survives
    assert np.array_equal(blur(checker, 0), checker)


def test_pixel_map_of_a_centre_crop_and_resize():
    """fit_to_resolution crops 4 columns each side of 48x40 to 40x40 and scales by 1.6: the
    input pixel (x, y) is the output pixel ((x - 4) * 1.6, y * 1.6)."""
    K = np.array([[40.0, 0.0, 24.0], [0.0, 40.0, 20.0], [0.0, 0.0, 1.0]])
    image = np.zeros((40, 48, 3), np.uint8)
    _, _, K_out, _ = fit_to_resolution(image, None, K, 64, 64)
    xy = np.array([[4.0, 0.0], [24.0, 20.0], [10.25, 33.5]])
    H = pixel_map(K, K_out)
    np.testing.assert_allclose(apply_pixel_map(H, xy), (xy - [4.0, 0.0]) * 1.6, atol=1e-9)
    np.testing.assert_allclose(apply_pixel_map(np.linalg.inv(H), apply_pixel_map(H, xy)), xy)
    tracks = np.stack([xy, xy + 1])  # (F, L, 2) works too
    assert apply_pixel_map(H, tracks).shape == (2, 3, 2)


@pytest.mark.parametrize("width, height, stride, step", [(13, 9, 1, 8), (64, 40, 4, 2),
                                                         (50, 30, 3, 3)])
def test_grid_subsample_is_the_coarser_grid(width, height, stride, step):
    fine = grid_points(width, height, stride)
    rows, cols = -(-height // stride), -(-width // stride)
    index = grid_subsample(rows, cols, step)
    np.testing.assert_array_equal(fine[index], grid_points(width, height, stride * step))
