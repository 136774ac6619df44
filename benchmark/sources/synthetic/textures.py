"""Textures of the synthetic scenes: seeded procedural texture images, their mip-mapped atlas
and the trilinear / bilinear lookups the shader samples it with."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

#: Photographs shipped with scikit-image (all load offline) mixed into the textures.
_PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
    "retina", "brick", "grass", "gravel", "camera", "moon", "coins", "horse", "page", "text",
    "clock", "cell",
)  # fmt: skip
#: Texture recipe, tuned by SIFT keypoints and 2-view RANSAC inliers at 448x256 (dense
#: small marks mattered most: ~600 -> ~1300 keypoints per view): photo texels per texture
#: texel (log-uniform range), texture area per pasted photo crop, mean spacing of random
#: marks (texels) drawn under / over the photos (relative density), largest mark (fraction
#: of the texture's long side).
_PHOTO_SCALE = (0.6, 1.6)
_PHOTO_AREA = 60_000.0
_MARK_SPACING = 24.0
_MARKS_UNDER = 1.0
_MARKS_OVER = 0.4
_MARK_MAX = 0.06
#: Pixels rendered per chunk when tracing supersamples (bounds peak memory).


@functools.cache
def _photos() -> tuple[tuple[np.ndarray, bool], ...]:
    """The scikit-image photographs as (uint8 image, is_gray), loaded once."""
    import skimage.data  # slow import: only texture generation needs the photographs

    out = []
    for name in _PHOTOS:
        im = np.asarray(getattr(skimage.data, name)())
        if im.dtype == bool:
            im = im.astype(np.uint8) * 255
        if im.ndim == 3:
            im = im[..., :3]
        out.append((np.ascontiguousarray(im.astype(np.uint8)), im.ndim == 2))
    return tuple(out)


def _value_noise(
    rng: np.random.Generator,
    w: int,
    h: int,
    finest: float = 4.0,
    channels: int = 3,
    slope: float = 0.7,
) -> np.ndarray:
    """(h, w, channels) float32 multi-scale value noise in [0, 1].

    Octaves from a few cells across down to ``finest`` pixels per cell, amplitude falling
    by ``2**-slope`` per octave; built as a pyramid on the coarse grid (each octave: double
    the grid with a cubic resize, add fresh random values) so only the last resize runs at
    full resolution.
    """
    gw, gh = math.ceil(w / finest) + 3, math.ceil(h / finest) + 3
    n_oct = max(0, math.ceil(math.log2(max(gw, gh) / 3.0)))
    shape = (math.ceil(gh / 2**n_oct) + 2, math.ceil(gw / 2**n_oct) + 2)
    acc = rng.random((*shape, channels), dtype=np.float32)
    amp = 1.0
    for _ in range(n_oct):
        amp *= 2.0**-slope
        shape = (2 * shape[0], 2 * shape[1])
        up = cv2.resize(acc, shape[::-1], interpolation=cv2.INTER_CUBIC).reshape(*shape, -1)
        acc = up + amp * rng.random((*shape, channels), dtype=np.float32)
    acc = acc[:gh, :gw]
    # grid point k sits at pixel (k - 1.5) * finest; resize maps the middle onto the image
    M = np.array([[1.0 / finest, 0, 1.5 - 0.5 / finest], [0, 1.0 / finest, 1.5 - 0.5 / finest]])
    out = cv2.warpAffine(
        acc, M, (w, h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT
    ).reshape(h, w, channels)
    lo, hi = acc.min(axis=(0, 1)), acc.max(axis=(0, 1))  # (the grid: cheap; cubic may
    out -= lo  # overshoot it a little, hence the clip)
    out *= 1.0 / np.maximum(hi - lo, 1e-6)
    return np.clip(out, 0.0, 1.0, out=out)


def _recolour(rng: np.random.Generator, img: np.ndarray, gray: bool) -> np.ndarray:
    """Uint8 RGB variant of a photo crop: gray ones mapped between two random colours, colour
    ones channel-permuted and re-tinted (so a photo used twice looks different)."""
    if gray:
        c0 = rng.uniform(0, 255, 3)
        c1 = rng.uniform(0, 255, 3)
        if np.abs(c1 - c0).sum() < 250:
            c1 = 255 - c0
        lut = c0 + (c1 - c0) * (np.arange(256)[:, None] / 255.0)
        x = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_GRAY2RGB)
    else:
        gain = rng.uniform(0.7, 1.25, 3)
        bias = rng.uniform(-30, 30, 3)
        lut = np.arange(256)[:, None] * gain + bias
        x = np.ascontiguousarray(img[..., rng.permutation(3)])
    lut8 = np.clip(lut + 0.5, 0, 255).astype(np.uint8).reshape(256, 1, 3)
    return cv2.LUT(x, lut8)


def _paste_photo(rng: np.random.Generator, canvas: np.ndarray) -> None:
    """Blend one rotated, scaled (about 1:1), recoloured photo crop into uint8 ``canvas``."""
    h, w = canvas.shape[:2]
    photos = _photos()
    img, gray = photos[int(rng.integers(len(photos)))]
    ph, pw = img.shape[:2]
    scale = float(np.exp(rng.uniform(np.log(_PHOTO_SCALE[0]), np.log(_PHOTO_SCALE[1]))))
    # crop at most about half the canvas (after scaling)
    cw = int(min(pw * rng.uniform(0.3, 1.0), 0.6 * w / scale) + 8)
    ch = int(min(ph * rng.uniform(0.3, 1.0), 0.6 * h / scale) + 8)
    cw, ch = min(cw, pw), min(ch, ph)
    x0, y0 = int(rng.integers(0, pw - cw + 1)), int(rng.integers(0, ph - ch + 1))
    crop = _recolour(rng, img[y0 : y0 + ch, x0 : x0 + cw], gray)
    if rng.random() < 0.5:
        crop = np.ascontiguousarray(crop[:, ::-1])
    angle = rng.uniform(-180.0, 180.0)
    M = cv2.getRotationMatrix2D((cw / 2, ch / 2), angle, scale)
    cs = np.array([[0, 0, 1], [cw, 0, 1], [cw, ch, 1], [0, ch, 1]], np.float64) @ M.T
    bw = int(np.ceil(np.ptp(cs[:, 0]))) + 2
    bh = int(np.ceil(np.ptp(cs[:, 1]))) + 2
    M[:, 2] -= cs.min(axis=0) - 1
    px = int(rng.integers(-bw // 4, max(w - 3 * bw // 4, -bw // 4) + 1))
    py = int(rng.integers(-bh // 4, max(h - 3 * bh // 4, -bh // 4) + 1))
    sx0, sy0, sx1, sy1 = max(px, 0), max(py, 0), min(px + bw, w), min(py + bh, h)
    if sx0 >= sx1 or sy0 >= sy1:
        return
    M[:, 2] -= (sx0 - px, sy0 - py)  # warp straight into the visible part
    size = (sx1 - sx0, sy1 - sy0)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    patch = cv2.warpAffine(crop, M, size, flags=interp)
    mask = np.zeros((ch, cw), np.uint8)
    if rng.random() < 0.4:
        cv2.ellipse(mask, (cw // 2, ch // 2), (cw // 2, ch // 2), 0, 0, 360, 255, -1, cv2.LINE_AA)
    else:
        mask[:] = 255
    alpha = cv2.warpAffine(mask, M, size, flags=cv2.INTER_LINEAR)
    a = alpha.astype(np.float32) * (1.0 / 255.0)
    dst = canvas[sy0:sy1, sx0:sx1]
    dst[:] = cv2.blendLinear(patch, np.ascontiguousarray(dst), a, 1.0 - a)


def _draw_marks(rng: np.random.Generator, img: np.ndarray, density: float = 1.0) -> None:
    """Draw random coloured blobs, rings and strokes (anti-aliased) onto uint8 ``img``:
    mostly a few pixels across, so each becomes a distinct SIFT blob."""
    h, w = img.shape[:2]
    n = int(density * w * h / _MARK_SPACING**2) + 4
    sizes = np.exp(rng.uniform(np.log(1.5), np.log(_MARK_MAX * max(w, h) + 4), n))
    kinds = rng.random(n)
    cols = rng.integers(0, 256, (n, 3))
    cxy = rng.integers(0, (w, h), (n, 2))
    angles = rng.uniform(0, 360, n)
    aspect = rng.uniform(0.3, 1.0, n)
    for k in range(n):
        col = tuple(int(c) for c in cols[k])
        cx, cy = int(cxy[k, 0]), int(cxy[k, 1])
        s = float(sizes[k])
        if kinds[k] < 0.5:
            ax = (max(1, round(s)), max(1, round(s * aspect[k])))
            cv2.ellipse(img, (cx, cy), ax, float(angles[k]), 0, 360, col, -1, cv2.LINE_AA)
        elif kinds[k] < 0.7:
            thick = 1 + int(s > 6) + int(s > 15)
            cv2.circle(img, (cx, cy), max(2, round(s)), col, thick, cv2.LINE_AA)
        else:
            ang = math.radians(angles[k])
            p1 = (int(cx + 3 * s * math.cos(ang)), int(cy + 3 * s * math.sin(ang)))
            thick = max(1, round(s * aspect[k] / 2))
            cv2.line(img, (cx, cy), p1, col, thick, cv2.LINE_AA)


def make_texture(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """(height, width, 3) uint8 non-repeating texture.

    Layers: coloured multi-scale value noise; dense random marks (blobs, rings, strokes);
    a mosaic of scikit-image photo crops at about one photo pixel per texel (rotated,
    flipped, recoloured) over most of the area; fine multiplicative mottling (so no region
    is flat); sparser marks on top. Everything is seeded by ``rng``.
    """
    noise = _value_noise(rng, width, height, finest=6.0, slope=0.6)
    A = rng.normal(0.0, 0.6, (3, 3)) + np.eye(3) * 0.5
    mean = rng.uniform(70, 190, 3)
    affine = np.concatenate([A.T, (mean - 127.5 * A.sum(axis=0))[:, None]], axis=1)
    canvas = cv2.transform((noise * 255.0 + 0.5).astype(np.uint8), affine)  # saturating
    area = float(width * height)
    _draw_marks(rng, canvas, density=_MARKS_UNDER)
    n_photos = int(np.clip(round(area / _PHOTO_AREA), 2, 80))
    for _ in range(n_photos):
        _paste_photo(rng, canvas)
    mottle = _value_noise(rng, width, height, finest=3.0, channels=1, slope=0.3)
    m8 = cv2.cvtColor((mottle * 255.0 + 0.5).astype(np.uint8), cv2.COLOR_GRAY2RGB)
    canvas = cv2.addWeighted(canvas, 0.7, cv2.multiply(canvas, m8, scale=0.6 / 255.0), 1.0, 0.0)
    _draw_marks(rng, canvas, density=_MARKS_OVER)
    return canvas


def _mip_chain(img: np.ndarray, min_size: int = 4) -> list[np.ndarray]:
    """Gaussian image pyramid (cv2.pyrDown) down to ``min_size`` on the long side."""
    levels = [img]
    while max(levels[-1].shape[:2]) > min_size and min(levels[-1].shape[:2]) > 1:
        levels.append(cv2.pyrDown(levels[-1]))
    return levels


@dataclass
class _Atlas:
    """All mip levels of all textures in one flat (N, 3) uint8 tensor plus lookup tables,
    flat over (rect m, level l) with key ``m * levels + l`` (levels past a texture's chain
    repeat its last one)."""

    texels: torch.Tensor  # (N, 3) uint8
    levels: int
    offset: torch.Tensor  # (M * L,) int64: first texel of the level
    width: torch.Tensor  # (M * L,) int64
    height: torch.Tensor  # (M * L,) int64
    widthf: torch.Tensor  # (M * L,) float32
    heightf: torch.Tensor  # (M * L,) float32
    max_level: torch.Tensor  # (M,) float32


def _build_atlas(textures: Sequence[np.ndarray]) -> _Atlas:
    chains = [_mip_chain(t) for t in textures]
    L = max(len(c) for c in chains)
    M = len(chains)
    offset = np.zeros((M, L), np.int64)
    wid = np.zeros((M, L), np.int64)
    hei = np.zeros((M, L), np.int64)
    parts, pos = [], 0
    for m, chain in enumerate(chains):
        for lev in range(L):
            im = chain[min(lev, len(chain) - 1)]
            if lev < len(chain):
                parts.append(im.reshape(-1, 3))
                offset[m, lev] = pos
                pos += im.shape[0] * im.shape[1]
            else:
                offset[m, lev] = offset[m, len(chain) - 1]
            hei[m, lev], wid[m, lev] = im.shape[:2]
    w, h = torch.from_numpy(wid.ravel()), torch.from_numpy(hei.ravel())
    return _Atlas(
        texels=torch.from_numpy(np.concatenate(parts)),
        levels=L,
        offset=torch.from_numpy(offset.ravel()),
        width=w,
        height=h,
        widthf=w.float(),
        heightf=h.float(),
        max_level=torch.tensor([len(c) - 1 for c in chains], dtype=torch.float32),
    )


def atlas_level0(atlas: _Atlas) -> list[np.ndarray]:
    """Each rectangle's level-0 texture (H, W, 3) uint8: views into the atlas's texels."""
    texels = atlas.texels.numpy()
    out = []
    for key in range(0, len(atlas.offset), atlas.levels):
        start, w, h = (int(v[key]) for v in (atlas.offset, atlas.width, atlas.height))
        out.append(texels[start : start + w * h].reshape(h, w, 3))
    return out


def _trilinear(
    atlas: _Atlas, m: torch.Tensor, lod: torch.Tensor, u: torch.Tensor, v: torch.Tensor
) -> torch.Tensor:
    """Mip-mapped lookup (N, 3) float32: bilinear in the two levels around ``lod`` (log2 of
    level-0 texels per pixel; clamped to the chain), blended linearly."""
    top = atlas.max_level[m]
    lod = torch.minimum(lod.clamp(min=0.0), top)
    l0 = lod.floor()
    frac = (lod - l0)[:, None]
    key = m * atlas.levels
    col = _bilinear(atlas, key + l0.long(), u, v)
    blend = (lod > l0).nonzero().squeeze(1)  # magnified / exact levels need one lookup only
    if blend.numel():
        kb = key[blend] + torch.minimum(l0[blend] + 1, top[blend]).long()
        c1 = _bilinear(atlas, kb, u[blend], v[blend])
        col[blend] += frac[blend] * (c1 - col[blend])
    return col


def _bilinear(atlas: _Atlas, key: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Bilinear texel lookup (N, 3) float32 at texture coords (u, v) in [0, 1] of the
    texture levels ``key`` (clamped at the borders, no wrapping): one gather for 4 taps."""
    wf, hf = atlas.widthf[key], atlas.heightf[key]
    wi = atlas.width[key]
    x = u * wf - 0.5
    y = v * hf - 0.5
    x0 = x.floor()
    y0 = y.floor()
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    zero = torch.zeros(())
    xa = torch.clamp(x0, zero, wf - 1).long()
    xb = torch.clamp(x0 + 1, zero, wf - 1).long()
    ya = torch.clamp(y0, zero, hf - 1).long() * wi + atlas.offset[key]
    yb = torch.clamp(y0 + 1, zero, hf - 1).long() * wi + atlas.offset[key]
    idx = torch.stack([ya + xa, ya + xb, yb + xa, yb + xb])
    taps = atlas.texels.index_select(0, idx.reshape(-1)).reshape(4, -1, 3).float()
    top = taps[0] + fx * (taps[1] - taps[0])
    bot = taps[2] + fx * (taps[3] - taps[2])
    return top + fy * (bot - top)
