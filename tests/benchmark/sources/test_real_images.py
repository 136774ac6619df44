"""Real-image scene inputs: checksummed download, cropping, disparity to depth, and a clear
error when the depth model's weights are missing."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from benchmark.sources.real_images import (
    InputUnavailable,
    center_crop_resize,
    disparity_to_depth,
    estimate_depth,
    fetch_image,
)


def test_fetch_checks_the_sha256(tmp_path):
    source = tmp_path / "img.bin"
    source.write_bytes(b"pixels" * 100)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    out = fetch_image(source.as_uri(), digest, tmp_path / "ok")
    assert out.read_bytes() == source.read_bytes()
    with pytest.raises(ValueError, match="does not match"):
        fetch_image(source.as_uri(), "0" * 64, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()  # a mismatching download is never kept
    with pytest.raises(InputUnavailable, match="cannot download"):
        fetch_image((tmp_path / "missing").as_uri(), digest, tmp_path / "x")


def test_center_crop_keeps_aspect_and_centre():
    image = np.zeros((100, 300, 3), np.uint8)
    image[:, 140:160] = 255  # a vertical bar at the centre
    out = center_crop_resize(image, 64, 64)
    assert out.shape == (64, 64, 3)
    # Scale 0.64 (height 100 -> 64), so the 20-px bar becomes ~13 px, still centred.
    cols = np.where(out[32, :, 0] > 128)[0]
    assert abs((cols.min() + cols.max()) / 2 - 31.5) <= 1
    assert 11 <= len(cols) <= 15


def test_disparity_to_depth_is_inverse_and_median_normalised():
    disparity = np.array([[1.0, 2.0], [4.0, 8.0]])
    depth = disparity_to_depth(disparity)
    assert np.median(depth) == pytest.approx(1.0)
    ratio = depth * disparity  # depth proportional to 1 / disparity
    np.testing.assert_allclose(ratio, ratio[0, 0], rtol=1e-6)
    with pytest.raises(ValueError, match="non-finite"):
        disparity_to_depth(np.array([[1.0, np.nan]]))


def test_missing_depth_model_names_what_to_download(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    image = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(InputUnavailable, match="depth model"):
        estimate_depth(image, str(tmp_path / "no-such-model"), device="cpu")
