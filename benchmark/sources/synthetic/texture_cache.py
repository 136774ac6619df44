"""The texture cache of a prepared synthetic scene (``textures.npz`` beside ``scene.json``).

Why: generating the procedural textures (~14 Mpx per room scene) took 2.5-4 s of every
process that renders a scene (reference, gt_render, videos, edits): more than rendering a
14-frame 448x256 clip. The scene rule writes them once (:func:`save_textures`); later
processes read them (:func:`read_texture_cache`). A cache whose fingerprint does not match
the scene and the texture code is ignored, so the cache can make a run faster, never
different. numpy's .npz is the format: nothing else is needed to read it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.io import atomic_write
from benchmark.sources.synthetic import textures as textures_module

#: File name of a prepared scene's texture cache.
TEXTURE_CACHE = "textures.npz"


def texture_fingerprint(scene: Any) -> str:
    """sha256 of everything a scene's textures depend on: its class, seed, texture sizes,
    ``_texture_recipe()``, and the source of the texture code (textures.py and the modules
    defining the scene's class and its bases)."""
    cls = type(scene)
    sources = [inspect.getsource(textures_module)]
    for klass in cls.__mro__:
        module = sys.modules.get(klass.__module__)
        if klass is not object and module is not None and hasattr(module, "__file__"):
            sources.append(inspect.getsource(module))
    payload = {
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "seed": scene.seed,
        "sizes": [list(size) for size in scene.texture_sizes()],
        "recipe": scene._texture_recipe(),
        "source": hashlib.sha256("\0".join(sources).encode()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def save_textures(scene: Any, path: str | Path) -> Path:
    """Write every rectangle's texture (level 0) and the scene's fingerprint to ``path``
    (.npz, uncompressed: 3 bytes per texel, ~40 MB for a room scene), atomically."""
    textures = scene.base_textures()  # from its atlas when it has rendered: no rework
    sizes = np.array([t.shape[:2] for t in textures], np.int64)  # (M, 2): rows, columns
    texels = np.concatenate([t.reshape(-1, 3) for t in textures])
    key = np.array(texture_fingerprint(scene))

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:  # a handle: np.savez would append ".npz" to tmp
            np.savez(handle, key=key, sizes=sizes, texels=texels)

    return atomic_write(path, write)


def read_texture_cache(scene: Any, path: str | Path) -> list[np.ndarray] | None:
    """The scene's textures from ``path``; None when the file is absent, is not this scene's
    (fingerprint or sizes differ) or cannot be read (said on stderr): then generate them."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path) as cache:
            if str(cache["key"]) != texture_fingerprint(scene):
                return None
            sizes, texels = cache["sizes"], cache["texels"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        print(f"warning: texture cache {path} unreadable ({exc}); regenerating", file=sys.stderr)
        return None
    expected = [(h, w) for w, h in scene.texture_sizes()]
    if [tuple(int(v) for v in size) for size in sizes] != expected:
        return None
    ends = np.cumsum([h * w for h, w in expected])
    parts = np.split(texels, ends[:-1])
    return [part.reshape(h, w, 3) for part, (h, w) in zip(parts, expected, strict=True)]
