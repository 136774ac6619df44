"""FID/KID through clean-fid (benchmark/stages/fid.py): known properties and hand-computed values.

The real code path (clean-fid's loader, clean resize, batch call and distances) runs with a
random-weight Inception (benchmark.stages.fid.random_inception_extractor, tiny input and feature
size for speed) or with a hand-checkable colour extractor. Upstream facts are from
clean-fid 0.1.35 (cleanfid/fid.py, cleanfid/features.py, cleanfid/downloads_helper.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from benchmark.io import atomic_write_text, write_frames, write_png
from benchmark.stages import fid as F

#: Feature size of the random extractor in these tests: FID needs more frames than features
#: (full-rank covariances), and sqrtm is cubic in it.
DIM = 8


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The test machine's cores are shared: one torch thread is several times faster here."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def extractor():
    return F.random_inception_extractor(seed=0, feature_dim=DIM, input_size=75)


def smooth_images(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    """(n, size, size, 3) uint8 images: sums of random low-frequency sinusoids per channel."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / 32.0
    out = []
    for _ in range(n):
        img = np.zeros((size, size, 3))
        for c in range(3):
            for _ in range(3):
                fx, fy, phase = rng.uniform(0.5, 4), rng.uniform(0.5, 4), rng.uniform(0, 2 * np.pi)
                img[..., c] += rng.uniform(0.2, 1) * np.sin(2 * np.pi * (fx * xx + fy * yy) + phase)
        img = (img - img.min()) / (np.ptp(img) + 1e-9)
        out.append((img * 255).round().astype(np.uint8))
    return np.stack(out)


def blurred(images: np.ndarray, sigma: float) -> np.ndarray:
    return (
        np.stack([ndimage.gaussian_filter(i.astype(float), (sigma, sigma, 0)) for i in images])
        .round()
        .clip(0, 255)
        .astype(np.uint8)
    )


@pytest.fixture(scope="module")
def ref_images() -> np.ndarray:
    return smooth_images(24, seed=1)


@pytest.fixture(scope="module")
def ref_feats(ref_images, extractor) -> np.ndarray:
    return F.frame_features(ref_images, extractor)


# --------------------------------------------------------------------------- upstream facts


def test_constants_match_installed_clean_fid():
    from cleanfid import downloads_helper
    from cleanfid.utils import EXTENSIONS

    assert downloads_helper.inception_url == F.INCEPTION_URL
    assert downloads_helper.inception_url.endswith("/" + F.INCEPTION_FILE)
    assert {f".{e.lower()}" for e in EXTENSIONS if e.lower() != "npy"} == F.IMAGE_SUFFIXES


def test_default_cache_is_clean_fids_tmp(monkeypatch):
    # cleanfid/features.py feature_extractor: path = "/tmp" (non-Windows).
    monkeypatch.delenv(F.INCEPTION_DIR_ENV, raising=False)
    assert F.inception_path() == Path("/tmp") / "inception-2015-12-05.pt"


# --------------------------------------------------------------------------- pipeline, exact


class MeanColour(torch.nn.Module):
    """Features = mean RGB of the 299x299 image clean-fid hands over (and records its input)."""

    name = "mean colour"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.shape = tuple(images.shape)
        return images.mean(dim=(2, 3))


def solid(colours: np.ndarray, size: int = 20) -> np.ndarray:
    return np.broadcast_to(colours[:, None, None, :], (len(colours), size, size + 3, 3)).copy()


def test_clean_pipeline_hands_rgb_0_255_at_299_to_the_extractor():
    colours = np.array([[10, 200, 30], [255, 0, 128], [7, 7, 7]], dtype=np.uint8)
    model = MeanColour()
    feats = F.frame_features(solid(colours), model)
    assert model.shape == (3, 3, 299, 299)
    # Bicubic resizing of a constant image is that constant (weights sum to one).
    np.testing.assert_allclose(feats, colours, atol=1e-3)


def test_fid_end_to_end_equals_hand_computed_value():
    """Features of solid images are their colours, so with gen = c * ref + b (per colour)
    FID = ||(c - 1) mu + b||^2 + (c - 1)^2 tr(Sigma) (covariance scales by c^2)."""
    rng = np.random.default_rng(3)
    ref = rng.integers(40, 110, size=(12, 3)).astype(float)
    c, b = 2.0, np.array([5.0, -10.0, 20.0])
    gen = c * ref + b  # integers in [70, 240]: exact uint8 colours
    result = F.fid_between(
        solid(gen.astype(np.uint8)),
        solid(ref.astype(np.uint8)),
        extractor=MeanColour(),
        device="cpu",
    )
    mu, sigma = ref.mean(0), np.cov(ref, rowvar=False)
    expected = np.sum(((c - 1) * mu + b) ** 2) + (c - 1) ** 2 * np.trace(sigma)
    assert result.fid == pytest.approx(expected, rel=1e-4)
    assert (result.num_gen, result.num_ref, result.extractor) == (12, 12, "mean colour")


def test_kid_of_a_set_with_itself_is_the_unbiased_estimate_by_hand():
    """cleanfid/fid.py kernel_distance: k(x, y) = (x.y / D + 1)^3; with both sets of size m
    every subset is the whole set, so KID = (2 S_off / (m - 1) - 2 (S_off + S_diag) / m) / m
    whatever the random draws (S_off/S_diag: off-diagonal/diagonal kernel sums)."""
    feats = np.random.default_rng(0).normal(size=(10, 4))
    k = (feats @ feats.T / 4 + 1) ** 3
    s_diag = np.trace(k)
    s_off = k.sum() - s_diag
    m = len(feats)
    expected = (2 * s_off / (m - 1) - 2 * (s_off + s_diag) / m) / m
    result = F.fid_from_features(feats, feats.copy())
    assert result.kid == pytest.approx(expected, rel=1e-9)
    assert abs(result.fid) < 1e-9


def test_kid_leaves_the_global_numpy_generator_alone():
    a, b = np.random.default_rng(0).normal(size=(2, 20, 4))
    np.random.seed(123)  # noqa: NPY002
    expected_next = np.random.random()  # noqa: NPY002
    np.random.seed(123)  # noqa: NPY002
    first = F.fid_from_features(a, b[:15]).kid
    assert np.random.random() == expected_next  # noqa: NPY002
    assert F.fid_from_features(a, b[:15]).kid == first  # seeded subsets: reproducible


# --------------------------------------------------------------------------- random Inception


def test_random_inception_features_are_non_degenerate(ref_feats, extractor, ref_images):
    assert ref_feats.shape == (24, DIM)
    assert np.isfinite(ref_feats).all()
    # Images differ in feature space by a sizeable fraction of the feature magnitude.
    assert ref_feats.std(axis=0).mean() > 0.05 * np.abs(ref_feats).mean()
    assert np.linalg.matrix_rank(ref_feats - ref_feats.mean(0)) == DIM
    again = F.random_inception_extractor(seed=0, feature_dim=DIM, input_size=75)
    np.testing.assert_allclose(F.frame_features(ref_images[:4], again), ref_feats[:4], atol=1e-5)
    other = F.random_inception_extractor(seed=1, feature_dim=DIM, input_size=75)
    assert not np.allclose(F.frame_features(ref_images[:4], other), ref_feats[:4], rtol=1e-2)
    assert "not comparable" in extractor.name


def test_identical_sets_give_zero_and_blur_grows_monotonically(extractor, ref_images, ref_feats):
    same = F.fid_between(ref_images.copy(), ref_images, extractor=extractor, device="cpu")
    scale = np.trace(np.cov(ref_feats, rowvar=False))
    assert abs(same.fid) < 1e-3 * scale
    fids, kids = [], []
    for sigma in (1.0, 2.0, 4.0):
        result = F.fid_from_features(
            F.frame_features(blurred(ref_images, sigma), extractor), ref_feats
        )
        fids.append(result.fid)
        kids.append(result.kid)
    assert fids[0] > 100 * max(abs(same.fid), 1e-12)
    assert fids[0] > 0.01 * scale  # clearly above zero, on the features' own scale
    assert fids == sorted(fids) and len(set(fids)) == 3
    assert kids == sorted(kids)
    assert abs(same.kid) < 0.05 * kids[1]


def test_a_brightness_shift_scores_above_a_fresh_sample(extractor, ref_feats):
    """Another draw from the same image distribution vs the same draw made brighter."""
    fresh = smooth_images(24, seed=2)
    fid_fresh = F.fid_from_features(F.frame_features(fresh, extractor), ref_feats).fid
    shifted = (fresh.astype(int) * 0.6 + 100).astype(np.uint8)
    fid_shift = F.fid_from_features(F.frame_features(shifted, extractor), ref_feats).fid
    assert fid_shift > 5 * fid_fresh


def test_png_folders_and_arrays_give_the_same_features(tmp_path, extractor, ref_images, ref_feats):
    write_frames(tmp_path / "a", ref_images[:12])
    write_frames(tmp_path / "b", ref_images[12:])
    from_files = F.frame_features([tmp_path / "a", tmp_path / "b"], extractor)
    np.testing.assert_allclose(from_files, ref_feats, rtol=1e-5, atol=1e-6)
    assert F.count_frames(tmp_path) == 24


# --------------------------------------------- image files of every kind (issue 14, kind 5)


def _save(path: Path, array: np.ndarray, mode: str | None = None) -> None:
    """Write a PNG with PIL (an encoder other than the project's own writer)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path) if mode else Image.fromarray(array).save(path)


def _gray_sets(tmp_path: Path, n: int = 12) -> dict[str, Path]:
    """The same gray pictures as 8-bit RGB, 8-bit gray and 16-bit gray PNG folders."""
    gray = smooth_images(n, size=40, seed=5)[..., 1]
    for i, g in enumerate(gray):
        _save(tmp_path / "rgb8" / f"{i:03d}.png", np.stack([g] * 3, -1))
        _save(tmp_path / "gray8" / f"{i:03d}.png", g)
        _save(tmp_path / "gray16" / f"{i:03d}.png", g.astype(np.uint16) * 257)
    return {k: tmp_path / k for k in ("rgb8", "gray8", "gray16")}


def test_fid_of_16bit_gray_against_its_8bit_twin_equals_the_8bit_gray_fid(tmp_path, extractor):
    """Field report 5: clean-fid's PIL loader clips 16-bit gray to white (FID 4.0 for the same
    pictures); read by the project's reader the 16-bit folder is its 8-bit twin exactly."""
    sets = _gray_sets(tmp_path)
    sixteen = F.fid_between(sets["gray16"], sets["rgb8"], extractor=extractor, device="cpu",
                            kid=False)
    eight = F.fid_between(sets["gray8"], sets["rgb8"], extractor=extractor, device="cpu",
                          kid=False)
    assert sixteen.fid is not None and eight.fid is not None
    assert abs(sixteen.fid - eight.fid) <= 1e-6
    rgb = F.frame_features(sets["rgb8"], extractor)
    np.testing.assert_array_equal(F.frame_features(sets["gray16"], extractor), rgb)


def test_every_image_kind_gives_the_features_of_its_rgb_pixels(tmp_path, extractor):
    """gray, gray+alpha, RGBA (alpha ignored), palette, 16-bit RGB: features equal those of
    the uint8 RGB pixels the one documented rule gives (benchmark.io.to_rgb8)."""
    import cv2

    rgb = smooth_images(3, size=36, seed=9)
    alpha = (np.arange(36 * 36).reshape(36, 36) % 251).astype(np.uint8)
    _save(tmp_path / "rgba.png", np.dstack([rgb[0], alpha]), "RGBA")
    _save(tmp_path / "la.png", np.dstack([rgb[1][..., 0], alpha]), "LA")
    wide = rgb[2].astype(np.uint16) * 256 + 37  # not multiples of 257: rounding matters
    cv2.imwrite(str(tmp_path / "rgb16.png"), wide[..., ::-1])
    from PIL import Image

    pal = Image.fromarray(rgb[0]).quantize(colors=32)
    pal.save(tmp_path / "pal.png")
    expected = np.stack([
        rgb[0],
        np.repeat(rgb[1][..., :1], 3, -1),
        np.floor(wide / 257.0 + 0.5),  # round(v / 257)
        np.asarray(pal.convert("RGB")),
    ]).astype(np.uint8)
    files = [tmp_path / n for n in ("rgba.png", "la.png", "rgb16.png", "pal.png")]
    got = F.frame_features(files, extractor)
    np.testing.assert_allclose(got, F.frame_features(expected, extractor), rtol=0, atol=1e-6)


# --------------------------------------------------------------------------- missing/too few


def test_no_inception_weights_gives_the_reason_not_a_number(monkeypatch, tmp_path, ref_images):
    monkeypatch.setenv(F.INCEPTION_DIR_ENV, str(tmp_path))
    reason = F.inception_available()
    assert reason is not None
    assert str(tmp_path / "inception-2015-12-05.pt") in reason
    assert "trajbench fetch-weights inception" in reason and F.INCEPTION_URL in reason
    result = F.fid_between(ref_images[:3], ref_images[3:8])
    assert (result.fid, result.kid, result.num_gen, result.num_ref) == (None, None, 3, 5)
    assert result.reason == reason
    assert list(tmp_path.iterdir()) == []  # nothing downloaded


def test_corrupt_inception_file_gives_the_reason(monkeypatch, tmp_path, ref_images):
    monkeypatch.setenv(F.INCEPTION_DIR_ENV, str(tmp_path))
    (tmp_path / F.INCEPTION_FILE).write_bytes(b"truncated download")
    assert F.inception_available() is None
    result = F.fid_between(ref_images[:3], ref_images[3:8], device="cpu")
    assert result.fid is None and "cannot load" in result.reason and "delete it" in result.reason


def test_too_few_frames_gives_a_reason_and_small_samples_a_note():
    feats = np.random.default_rng(0).normal(size=(30, DIM))
    one = F.fid_from_features(feats[:1], feats)
    assert one.fid is None and one.kid is None
    assert "too few frames" in one.reason and "1 generated" in one.reason
    empty = F.fid_from_features(np.zeros((0, 0)), feats)
    assert empty.fid is None and "0 generated" in empty.reason
    small = F.fid_from_features(feats[:DIM], feats[DIM:])  # 8 frames, 8 dims
    assert "small sample" in small.note and "biased" in small.note
    assert F.fid_from_features(feats[:15], feats[15:]).note == ""


def test_bad_inputs_are_rejected(extractor):
    with pytest.raises(ValueError, match="uint8"):
        F.frame_features(np.zeros((2, 8, 8, 3), dtype=np.float32), extractor)
    with pytest.raises(ValueError, match="mode"):
        F.frame_features(np.zeros((2, 8, 8, 3), dtype=np.uint8), extractor, mode="legacy_pytorch")
    with pytest.raises(ValueError, match="input_size"):
        F.random_inception_extractor(input_size=32)


# --------------------------------------------------------------------------- suite level


def _meta(run: Path, status: str = "ok") -> None:
    atomic_write_text(run / "meta.json", json.dumps({"status": status}))


def dolly_in(scene: np.ndarray, num_frames: int) -> np.ndarray:
    """Frames of a camera moving in: centre crops of ``scene`` shrinking from 48 to 48 - 8t
    pixels, resized to 32x32 (the zoomed frames hold lower frequencies than frame 0)."""
    import cv2

    frames = []
    for t in range(num_frames):
        side = 48 - 8 * t
        lo = (48 - side) // 2
        crop = scene[lo : lo + side, lo : lo + side]
        frames.append(
            cv2.resize(
                crop, (32, 32), interpolation=cv2.INTER_AREA if side > 32 else cv2.INTER_CUBIC
            )
        )
    return np.stack(frames)


def fabricated_suite(root: Path, num_frames: int = 4) -> None:
    """A synthetic-suite results folder: exact renders of 12 dolly-in clips, gt_render =
    copies of the renders, static = frame 0 repeated (+ one failed static run)."""
    scenes = smooth_images(12, size=48, seed=5)
    for i, scene in enumerate(scenes):
        clip = f"room{i // 3:02d}__path{i % 3}"
        frames = dolly_in(scene, num_frames)
        write_frames(root / "reference" / f"f{num_frames}" / clip, frames)
        (root / "reference" / f"f{num_frames}" / clip / "done").touch()
        if i % 3 == 0:
            write_png(root / "scenes" / f"room{i // 3:02d}" / "image.png", frames[0])
        for method, out in (
            ("gt_render", frames),
            ("static", np.repeat(frames[:1], num_frames, 0)),
        ):
            run = root / method / f"f{num_frames}" / clip / "seed0"
            write_frames(run / "frames", out)
            _meta(run)
    failed = root / "static" / f"f{num_frames}" / "room00__path9" / "seed0"
    failed.mkdir(parents=True)
    _meta(failed, "failed")


def test_suite_fid_ranks_gt_render_below_static(tmp_path, extractor):
    fabricated_suite(tmp_path)
    rows = F.suite_fid(tmp_path, ["gt_render", "static"], extractor=extractor, device="cpu")
    by = {r["method"]: r for r in rows}
    assert set(by) == {"gt_render", "static"}
    gt, static = by["gt_render"], by["static"]
    for row in rows:
        # 12 clips x frames 1..3 on both sides; frame 0 (conditioning view) is left out.
        assert (row["num_frames"], row["num_gen"], row["num_ref"]) == (4, 36, 36)
        assert row["reference"] == "renders" and row["reason"] == ""
    assert (gt["num_runs"], gt["runs_skipped"]) == (12, 0)
    assert (static["num_runs"], static["runs_skipped"]) == (12, 1)
    assert abs(gt["fid"]) < 1e-6 * static["fid"]
    assert static["fid"] > 0 and static["kid"] > 0 > gt["kid"]
    note = F.fid_footnote(rows)
    assert "gt_render 4 frames: 36 vs 36" in note and "not comparable" in note


def test_suite_reference_sets(tmp_path):
    fabricated_suite(tmp_path)
    renders = F.reference_files(tmp_path, 4, "auto")
    assert len(renders) == 36 and all(p.name != "00000.png" for p in renders)
    cond = F.reference_files(tmp_path, 4, "conditioning")
    assert [p.parent.name for p in cond] == ["room00", "room01", "room02", "room03"]
    assert F.reference_kind(tmp_path, 16, "auto") == "conditioning"  # no renders at 16 frames
    with pytest.raises(ValueError, match="reference"):
        F.reference_files(tmp_path, 4, "frames")


def test_suite_fid_without_weights_reports_the_reason(tmp_path, monkeypatch):
    fabricated_suite(tmp_path)
    monkeypatch.setenv(F.INCEPTION_DIR_ENV, str(tmp_path / "empty"))
    rows = F.suite_fid(tmp_path, "static", device="cpu")
    assert len(rows) == 1 and rows[0]["fid"] is None
    assert rows[0]["num_gen"] == 36 and "fetch-weights" in rows[0]["reason"]
    assert "Missing FID" in F.fid_footnote(rows)


def test_fid_rows_reach_the_paper_table(tmp_path, extractor):
    """What `trajbench fid` writes is what the table shows, with the footnote's counts."""
    import pandas as pd

    from benchmark.reporting.report import load_fid_rows, merge_fid
    from benchmark.reporting.tables import write_tables

    fabricated_suite(tmp_path)
    rows = F.suite_fid(tmp_path, ["gt_render", "static"], extractor=extractor, device="cpu")
    pd.DataFrame(rows).to_csv(tmp_path / "fid.csv", index=False)
    loaded = load_fid_rows(tmp_path / "fid.csv")
    summary = pd.DataFrame({"num_frames": [4, 4, 4], "method": ["gt_render", "static", "other"],
                            "runs": [12, 13, 1], "failed": [0, 1, 1]})
    merged = merge_fid(summary, loaded)
    static = next(r for r in rows if r["method"] == "static")
    assert merged["fid"].iloc[1] == pytest.approx(static["fid"], rel=1e-9)
    assert np.isnan(merged["fid"].iloc[2])  # no FID row for that method: '-' in the table
    write_tables(merged, tmp_path / "tables", "t", fid_note=F.fid_footnote(loaded))
    table = (tmp_path / "tables" / "table1.md").read_text()
    assert f"{static['fid']:.1f}" in table and "static 4 frames: 36 vs 36" in table


def test_fetch_weights_lists_sources_and_rejects_unknown_names():
    import subprocess
    import sys

    listed = subprocess.run([sys.executable, "-m", "benchmark.cli", "fetch-weights", "list"],
                            capture_output=True, text=True)
    assert listed.returncode == 0
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert {"inception", "svd-xt", "trajattn", "cameractrl", "depth", "cotracker3"} <= set(names)
    bad = subprocess.run([sys.executable, "-m", "benchmark.cli", "fetch-weights", "inceptoin"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown weights" in bad.stderr + bad.stdout


def test_low_rank_frechet_distance_is_exact():
    """Equal to clean-fid's sqrtm route where that is well posed, and defined where it is not
    (fewer frames than feature dimensions)."""
    from cleanfid.fid import frechet_distance

    rng = np.random.default_rng(3)
    for n, d in [(200, 8), (40, 64)]:
        gen = rng.normal(size=(n, d))
        ref = rng.normal(size=(n + 5, d)) * 1.3 + 0.2
        expected = frechet_distance(gen.mean(0), np.cov(gen, rowvar=False),
                                    ref.mean(0), np.cov(ref, rowvar=False))
        assert F.frechet_distance_low_rank(gen, ref) == pytest.approx(expected, rel=1e-6)
    few = rng.normal(size=(12, 256))
    assert abs(F.frechet_distance_low_rank(few, few)) < 1e-9
    result = F.fid_from_features(few, few + 0.5)
    assert result.fid == pytest.approx(256 * 0.25, rel=1e-9) and result.reason == ""
    assert "rank-deficient" in result.note
