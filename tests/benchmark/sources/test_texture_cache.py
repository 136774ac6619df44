"""The texture cache of prepared synthetic scenes (``scenes/<scene>/textures.npz``).

Truth is the render of a scene built fresh, whose textures are generated in-process: a render
that reads the cache must equal it byte for byte, and a cache that does not belong to the
scene (another seed, another family, other parameters, a damaged file) must be ignored, never
used.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.sources.editing import Recolour, edited_scene
from benchmark.sources.synthetic import SceneSpec, canonical_K, make_scene, render
from benchmark.sources.synthetic.texture_cache import (
    TEXTURE_CACHE,
    save_textures,
    texture_fingerprint,
)
from benchmark.sources.synthetic_hard import HardSceneSpec, make_hard_scene

W, H = 112, 64
SPEC = SceneSpec(seed=3, texels_per_pixel=0.25)


def _render(scene) -> np.ndarray:
    return render(scene, canonical_K(W, H), scene.base_w2c, W, H)[0]


def _no_generation(scene) -> None:
    """Make generating a texture fail, so a render can only succeed from the cache."""

    def refuse(m: int) -> np.ndarray:
        raise AssertionError(f"texture {m} generated although a valid cache was attached")

    scene.texture = refuse


@pytest.fixture(scope="module")
def fresh_render() -> np.ndarray:
    return _render(make_scene(SPEC))


@pytest.fixture(scope="module")
def cache_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("scene") / TEXTURE_CACHE
    save_textures(make_scene(SPEC), path)
    return str(path)


def test_a_render_from_the_cache_equals_the_fresh_render(cache_file, fresh_render):
    scene = make_scene(SPEC)
    scene.use_texture_cache(cache_file)
    _no_generation(scene)
    np.testing.assert_array_equal(_render(scene), fresh_render)


@pytest.mark.parametrize(
    "other",
    [
        SceneSpec(seed=4, texels_per_pixel=0.25),  # another seed: other textures, same sizes?
        SceneSpec(seed=3, texels_per_pixel=0.3),  # other texture sizes
        SceneSpec(seed=3, texels_per_pixel=0.25, num_boxes=4),  # another layout
    ],
)
def test_a_cache_of_another_scene_is_ignored(cache_file, other):
    scene = make_scene(other)
    scene.use_texture_cache(cache_file)
    np.testing.assert_array_equal(_render(scene), _render(make_scene(other)))
    assert texture_fingerprint(scene) != texture_fingerprint(make_scene(SPEC))


def test_a_damaged_or_missing_cache_falls_back_to_generating(tmp_path, fresh_render, capsys):
    damaged = tmp_path / TEXTURE_CACHE
    damaged.write_bytes(b"PK\x03\x04 not really a zip")
    for path in (damaged, tmp_path / "absent.npz"):
        scene = make_scene(SPEC)
        scene.use_texture_cache(path)
        np.testing.assert_array_equal(_render(scene), fresh_render)
    assert "unreadable" in capsys.readouterr().err


def test_hard_scenes_key_their_cache_on_their_own_recipe(tmp_path):
    path = tmp_path / TEXTURE_CACHE
    spec = HardSceneSpec(seed=3)
    save_textures(make_hard_scene(spec), path)
    cached = make_hard_scene(spec)
    cached.use_texture_cache(path)
    _no_generation(cached)
    np.testing.assert_array_equal(_render(cached), _render(make_hard_scene(spec)))
    # same seed and geometry, other texture contrast: the cache is not theirs
    other = make_hard_scene(HardSceneSpec(seed=3, contrast=0.2))
    other.use_texture_cache(path)
    np.testing.assert_array_equal(_render(other),
                                  _render(make_hard_scene(HardSceneSpec(seed=3, contrast=0.2))))
    # a room scene of the same seed is not a hard scene
    room = make_scene(SceneSpec(seed=3))
    assert texture_fingerprint(room) != texture_fingerprint(make_hard_scene(spec))


def test_an_edited_scene_recolours_the_original_textures_from_its_cache(cache_file):
    recolour = Recolour(hue_deg=120)
    expected = _render(edited_scene(make_scene(SPEC), recolour))
    original = make_scene(SPEC)
    original.use_texture_cache(cache_file)
    _no_generation(original)
    np.testing.assert_array_equal(_render(edited_scene(original, recolour)), expected)


def test_an_edit_of_a_hard_scene_is_refused_not_rendered_with_the_wrong_shading():
    """An edited scene renders with the base class's shading; a hard scene's view-dependent
    highlight would be lost, so the edit is refused with the reason."""
    with pytest.raises(ValueError, match="shades by view"):
        edited_scene(make_hard_scene(HardSceneSpec(seed=5)), Recolour(hue_deg=90))


def test_a_prepared_scene_renders_its_conditioning_view_again_from_its_cache(prepared_scene):
    """prepare-scene writes the cache; the scene rebuilt from the folder reads it, and its
    base view rendered from it is the stored image.png (rendered from fresh textures)."""
    from benchmark.sources.scenes import load_scene_view

    folder = prepared_scene("tiny-video-suite.yaml", "room00")
    assert (folder / TEXTURE_CACHE).is_file()
    view = load_scene_view(folder)
    scene = view.synthetic_scene()
    _no_generation(scene)
    cam = view.view
    rgb, _ = render(scene, cam.K, cam.w2c[0], cam.width, cam.height)
    np.testing.assert_array_equal(rgb, view.image)


def test_the_cache_holds_the_level0_textures_of_the_atlas_the_scene_rendered_with():
    from benchmark.sources.synthetic.textures import atlas_level0

    scene = make_scene(SPEC)
    level0 = atlas_level0(scene.atlas())
    assert len(level0) == len(scene.rects)
    for m, texture in enumerate(level0):
        np.testing.assert_array_equal(texture, scene.texture(m))
