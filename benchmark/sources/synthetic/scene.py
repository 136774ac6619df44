"""The synthetic scene: :class:`SyntheticScene` owns the rectangles, their textures and the
tracing / shading passes (its JSON-able recipe, :class:`SceneSpec`, is in ``spec.py``)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.cameras.convention import canonical_K
from benchmark.sources.synthetic.camera import (
    _LOWRES,
    CANONICAL_SIZE,
    NEAR,
    _as_camera,
    _Camera,
)
from benchmark.sources.synthetic.geometry import _BOUND_TOL, _INPLANE, Rect
from benchmark.sources.synthetic.spec import SceneSpec
from benchmark.sources.synthetic.texture_cache import read_texture_cache
from benchmark.sources.synthetic.textures import (
    _Atlas,
    _build_atlas,
    _trilinear,
    atlas_level0,
    make_texture,
)

#: Mip level bias (log2 texels): negative is sharper. Chosen by measurement against 16x
#: supersampled renders (see ``bench/render.py``, which patches it here).
_LOD_BIAS = -1.0
#: Most taps along the major axis of anisotropic footprints (a power of 2; 1 = isotropic
#: trilinear only): footprints with axis ratio in (1.5, 3] get 2 taps, above that 4.
_ANISO = 4


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count (no-op for None)."""
    old = torch.get_num_threads()
    if n is None or int(n) == old:
        yield
        return
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


class SyntheticScene:
    """Axis-aligned textured rectangles plus a base camera; renders with :func:`render`.

    Build one with :func:`make_scene` (seeded, closed room) or by hand from :class:`Rect`s
    (e.g. for tests; rays that miss everything get depth inf and black colour). Textures are
    generated lazily on the first render (seeded per rectangle) and cached.
    """

    def __init__(
        self,
        rects: Sequence[Rect],
        base_w2c: np.ndarray,
        seed: int = 0,
        spec: SceneSpec | None = None,
        texels_per_pixel: float = 1.0,
        max_texture_size: int = 2048,
    ) -> None:
        self.rects: tuple[Rect, ...] = tuple(rects)
        self.base_w2c = np.asarray(base_w2c, dtype=np.float64).copy()
        self.seed = int(seed)
        self.spec = spec
        self.texels_per_pixel = float(texels_per_pixel)
        self.max_texture_size = int(max_texture_size)
        self._axis = torch.tensor([r.axis for r in self.rects], dtype=torch.int64)
        self._b0 = torch.tensor([_INPLANE[r.axis][0] for r in self.rects], dtype=torch.int64)
        self._b1 = torch.tensor([_INPLANE[r.axis][1] for r in self.rects], dtype=torch.int64)
        self._coord = torch.tensor([r.coord for r in self.rects], dtype=torch.float64)
        self._lo = torch.tensor([r.lo for r in self.rects], dtype=torch.float64)
        self._hi = torch.tensor([r.hi for r in self.rects], dtype=torch.float64)
        self._bright = torch.tensor([r.brightness for r in self.rects], dtype=torch.float32)
        # texture coordinates as affine maps of the hit point: u = uvec . P + uoff, same for v
        M = len(self.rects)
        uvec, vvec, nvec = np.zeros((M, 3)), np.zeros((M, 3)), np.zeros((M, 3))
        uoff, voff = np.zeros(M), np.zeros(M)
        for m, r in enumerate(self.rects):
            b0, b1 = _INPLANE[r.axis]
            (su, sv), nvec[m, r.axis] = r.size, 1.0
            uvec[m, b0], uoff[m] = 1.0 / su, -r.lo[0] / su
            vvec[m, b1], voff[m] = -1.0 / sv, r.hi[1] / sv
        self._uvec, self._vvec, self._nvec = (
            torch.from_numpy(x).float() for x in (uvec, vvec, nvec)
        )
        self._uoff, self._voff = torch.from_numpy(uoff).float(), torch.from_numpy(voff).float()
        self._corners = [r.corners() for r in self.rects]
        self._atlas: _Atlas | None = None
        self._tex_sizes: list[tuple[int, int]] | None = None
        self._texture_cache: Path | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_atlas"] = None  # rebuilt on demand (deterministic)
        return state

    # ---- properties -------------------------------------------------------------------------

    @property
    def base_center(self) -> np.ndarray:
        """World position of the base camera centre."""
        return -self.base_w2c[:3, :3].T @ self.base_w2c[:3, 3]

    @property
    def room_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi) world corners of the bounding box of all geometry (the room, if closed)."""
        pts = np.concatenate(self._corners)
        return pts.min(axis=0), pts.max(axis=0)

    def clearance(self, points: np.ndarray) -> np.ndarray:
        """Distance from each world point (..., 3) to the nearest rectangle (any kind); use it
        to check that a camera path stays clear of geometry."""
        p = np.asarray(points, dtype=np.float64)
        shp = p.shape[:-1]
        p = p.reshape(-1, 1, 3)
        q = np.broadcast_to(p, (p.shape[0], len(self.rects), 3)).copy()
        ax = self._axis.numpy()
        b0, b1 = self._b0.numpy(), self._b1.numpy()
        idx = np.arange(len(self.rects))
        lo, hi = self._lo.numpy(), self._hi.numpy()
        q[:, idx, ax] = self._coord.numpy()
        q[:, idx, b0] = np.clip(q[:, idx, b0], lo[:, 0], hi[:, 0])
        q[:, idx, b1] = np.clip(q[:, idx, b1], lo[:, 1], hi[:, 1])
        return np.linalg.norm(q - p, axis=-1).min(axis=1).reshape(shp)

    def median_depth(self, K: np.ndarray, width: int, height: int) -> float:
        """Median z-depth of the base view for intrinsics K at (width, height), from a
        depth render at most 256 px wide with the same field of view."""
        s = min(1.0, _LOWRES[0] / width)
        w, h = max(1, round(width * s)), max(1, round(height * s))
        K_low = np.diag([w / width, h / height, 1.0]) @ np.asarray(K, dtype=np.float64)
        _, depth, _ = self._geometry(_as_camera(K_low, self.base_w2c, w, h))
        d = depth[torch.isfinite(depth)]
        return float(torch.median(d).item()) if d.numel() else float("inf")

    def _geometry(
        self, cam: _Camera, threads: int | None = 1
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Rectangle ids (H, W), float64 z-depth (H, W) and world points (H, W, 3) at the
        pixel centres."""
        with _torch_threads(threads), torch.inference_mode():
            d64 = cam.ray_grid()
            ids = self._trace_grid(cam, d64.float())
            depth, pts = self._exact_hits(cam, ids, d64)
        return ids, depth, pts

    # ---- textures ---------------------------------------------------------------------------

    def texture_sizes(self) -> list[tuple[int, int]]:
        """(width, height) of each rectangle's texture: about ``texels_per_pixel`` texels
        per pixel of a canonical 1024-px-wide base view, where that rectangle is seen
        nearest (10th percentile depth), capped at ``max_texture_size``."""
        if self._tex_sizes is not None:
            return self._tex_sizes
        w, h = _LOWRES
        K = canonical_K(w, h)
        ids, depth, _ = self._geometry(_as_camera(K, self.base_w2c, w, h))
        f_canon = canonical_K(*CANONICAL_SIZE)[0, 0]
        center = self.base_center
        near = self.clearance_per_rect(center)
        sizes = []
        for m, r in enumerate(self.rects):
            d = depth[ids == m]
            dist = float(torch.quantile(d.double(), 0.1)) if d.numel() >= 4 else near[m]
            dens = self.texels_per_pixel * f_canon / max(dist, 0.25)
            su, sv = r.size
            tw, th = su * dens, sv * dens
            cap = self.max_texture_size / max(tw, th, 1e-9)
            if cap < 1:
                tw, th = tw * cap, th * cap
            sizes.append((int(max(16, 16 * round(tw / 16))), int(max(16, 16 * round(th / 16)))))
        self._tex_sizes = sizes
        return sizes

    def clearance_per_rect(self, point: np.ndarray) -> np.ndarray:
        """Distance from one world point to each rectangle, (M,)."""
        p = np.asarray(point, dtype=np.float64)
        out = np.empty(len(self.rects))
        for m, r in enumerate(self.rects):
            q = p.copy()
            b0, b1 = _INPLANE[r.axis]
            q[r.axis] = r.coord
            q[b0] = np.clip(q[b0], r.lo[0], r.hi[0])
            q[b1] = np.clip(q[b1], r.lo[1], r.hi[1])
            out[m] = np.linalg.norm(q - p)
        return out

    def texture(self, m: int) -> np.ndarray:
        """The uint8 texture of rectangle m (seeded by the scene seed and m)."""
        w, h = self.texture_sizes()[m]
        return make_texture(np.random.default_rng([self.seed, m, 7411]), w, h)

    def base_textures(self) -> list[np.ndarray]:
        """Every rectangle's texture (level 0): from the atlas once it is built, else read
        from the texture cache when one is attached and valid (:meth:`use_texture_cache`),
        else generated in 2 threads (each texture has its own generator, so the result does
        not depend on scheduling)."""
        if self._atlas is not None:
            return atlas_level0(self._atlas)
        cached = None if self._texture_cache is None else read_texture_cache(self,
                                                                             self._texture_cache)
        if cached is not None:
            return cached
        self.texture_sizes()
        with ThreadPoolExecutor(max_workers=2) as pool:
            return list(pool.map(self.texture, range(len(self.rects))))

    def atlas(self) -> _Atlas:
        """All textures with their mip levels (built on first use)."""
        if self._atlas is None:
            self._atlas = _build_atlas(self.base_textures())
        return self._atlas

    # ---- texture cache (benchmark.sources.synthetic.texture_cache) ---------------------------

    def _texture_recipe(self) -> Any:
        """JSON-able inputs of :meth:`texture` beyond seed and size (subclasses extend it)."""
        return self.spec.to_dict() if self.spec is not None else None

    def use_texture_cache(self, path: str | Path) -> None:
        """Read textures from ``path`` (written by ``texture_cache.save_textures``) when it
        exists and its fingerprint matches; otherwise they are generated as usual."""
        self._texture_cache = Path(path)

    # ---- tracing ----------------------------------------------------------------------------

    def _windows(self, cam: _Camera) -> list[tuple[int, tuple[int, int, int, int]]]:
        out = []
        for m, c in enumerate(self._corners):
            win = cam.pixel_window(c)
            if win is not None:
                out.append((m, win))
        return out

    def _trace_grid(self, cam: _Camera, d32: torch.Tensor) -> torch.Tensor:
        """Nearest-rectangle id (H, W) int64 (-1 = miss) for the pixel-centre rays ``d32``
        (3, H, W): a z-buffer over rectangles, each tested only inside its screen window."""
        H, W = d32.shape[1:]
        zbuf = torch.full((H, W), math.inf, dtype=torch.float32)
        ids = torch.full((H, W), -1, dtype=torch.int64)
        C = cam.center
        for m, (x0, x1, y0, y1) in self._windows(cam):
            r = self.rects[m]
            a, (b0, b1) = r.axis, _INPLANE[r.axis]
            da = d32[a, y0:y1, x0:x1]
            t = (r.coord - C[a]) / da
            p0 = (C[b0] + t * d32[b0, y0:y1, x0:x1]).float()
            p1 = (C[b1] + t * d32[b1, y0:y1, x0:x1]).float()
            zc = zbuf[y0:y1, x0:x1]
            ok = (t > NEAR) & (t < zc)
            ok &= (p0 >= r.lo[0] - _BOUND_TOL) & (p0 <= r.hi[0] + _BOUND_TOL)
            ok &= (p1 >= r.lo[1] - _BOUND_TOL) & (p1 <= r.hi[1] + _BOUND_TOL)
            zbuf[y0:y1, x0:x1] = torch.where(ok, t, zc)
            ids[y0:y1, x0:x1] = torch.where(ok, m, ids[y0:y1, x0:x1])
        return ids

    def _trace_subpixels(
        self, cam: _Camera, iy: torch.Tensor, ix: torch.Tensor, dirs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Nearest hit (t, id) of rays ``dirs`` (E, S, 3) float32 that sample pixels (iy, ix)
        (E,): each rectangle is tested only on the pixels inside its screen window."""
        E, S = dirs.shape[:2]
        zbuf = torch.full((E, S), math.inf, dtype=torch.float32)
        ids = torch.full((E, S), -1, dtype=torch.int64)
        C = cam.center
        for m, (x0, x1, y0, y1) in self._windows(cam):
            sel = ((ix >= x0) & (ix < x1) & (iy >= y0) & (iy < y1)).nonzero().squeeze(1)
            if sel.numel() == 0:
                continue
            r = self.rects[m]
            a, (b0, b1) = r.axis, _INPLANE[r.axis]
            d = dirs[sel]
            t = (r.coord - C[a]) / d[..., a]
            p0 = (C[b0] + t * d[..., b0]).float()
            p1 = (C[b1] + t * d[..., b1]).float()
            zc = zbuf[sel]
            ok = (t > NEAR) & (t < zc)
            ok &= (p0 >= r.lo[0] - _BOUND_TOL) & (p0 <= r.hi[0] + _BOUND_TOL)
            ok &= (p1 >= r.lo[1] - _BOUND_TOL) & (p1 <= r.hi[1] + _BOUND_TOL)
            zbuf[sel] = torch.where(ok, t, zc)
            ids[sel] = torch.where(ok, m, ids[sel])
        return zbuf, ids

    def _exact_hits(
        self, cam: _Camera, ids: torch.Tensor, d64: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Float64 z-depth (H, W) and world points (H, W, 3) of the chosen rectangles (the
        float32 pass only picks which one): inf / nan where ids == -1."""
        hit = ids >= 0
        idc = ids.clamp(min=0)
        a = self._axis[idc]
        C = torch.from_numpy(cam.center)
        da = d64.gather(0, a[None]).squeeze(0)
        t = (self._coord[idc] - C[a]) / da
        t = torch.where(hit, t, torch.full_like(t, math.inf))
        pts = C[:, None, None] + t[None] * d64
        pts = torch.where(hit[None], pts, torch.full_like(pts, math.nan))
        return t, pts.permute(1, 2, 0)

    # ---- shading ----------------------------------------------------------------------------

    def _shade(
        self,
        ids: torch.Tensor,
        t: torch.Tensor,
        d: torch.Tensor,
        C: torch.Tensor,
        dx: torch.Tensor,
        dy: torch.Tensor,
    ) -> torch.Tensor:
        """Mip-mapped texture colour (N, 3) float32 in [0, 255] of hits at ray parameter
        ``t`` along rays ``d`` (N, 3) on rectangles ``ids`` (N,) (-1 -> black).

        ``dx``/``dy`` (3,) are the ray differentials of one sample footprint; the hit's
        footprint on its plane is ``t * (dx - d * dx_n / d_n)`` (n: the plane normal), which
        in texels sets the mip level (trilinear), and anisotropic footprints (axis ratio >
        1.5) get ``_ANISO`` trilinear taps along their major axis.
        """
        atlas = self.atlas()
        hit = ids >= 0
        m = ids.clamp(min=0)
        tt = torch.where(hit, t, torch.zeros_like(t))
        # texture coords are affine in the hit point: u = U . P + u0 (per rectangle)
        U, V, N = self._uvec[m], self._vvec[m], self._nvec[m]
        ud, vd, nd = (U * d).sum(1), (V * d).sum(1), (N * d).sum(1)
        u = U @ C + tt * ud + self._uoff[m]
        v = V @ C + tt * vd + self._voff[m]
        key0 = m * atlas.levels
        w0, h0 = atlas.widthf[key0], atlas.heightf[key0]
        rx_n, ry_n = (N @ dx) / nd, (N @ dy) / nd
        dudx = tt * (U @ dx - ud * rx_n) * w0
        dvdx = tt * (V @ dx - vd * rx_n) * h0
        dudy = tt * (U @ dy - ud * ry_n) * w0
        dvdy = tt * (V @ dy - vd * ry_n) * h0
        rx = torch.sqrt(dudx * dudx + dvdx * dvdx)
        ry = torch.sqrt(dudy * dudy + dvdy * dvdy)
        rmax, rmin = torch.maximum(rx, ry), torch.minimum(rx, ry)
        col = _trilinear(atlas, m, torch.log2(rmax.clamp(min=1e-6)) + _LOD_BIAS, u, v)
        ratio = rmax / rmin.clamp(min=1e-12)
        taps = 2
        while taps <= _ANISO:
            # ratio in (1.5, 3] -> 2 taps, (3, 6] -> 4 taps, ... (the last group takes the rest)
            lo_r = 1.5 if taps == 2 else 1.5 * taps / 2
            sel = ratio > lo_r
            if 2 * taps <= _ANISO:
                sel &= ratio <= 1.5 * taps
            idx = sel.nonzero().squeeze(1)
            if idx.numel():
                xmaj = (rx >= ry)[idx]
                ma = m[idx]
                mu = torch.where(xmaj, dudx[idx], dudy[idx]) / w0[idx]
                mv = torch.where(xmaj, dvdx[idx], dvdy[idx]) / h0[idx]
                lod = torch.log2(torch.maximum(rmin[idx], rmax[idx] / taps).clamp(min=1e-6))
                lod += _LOD_BIAS
                ui, vi = u[idx], v[idx]
                acc = torch.zeros((idx.numel(), 3))
                for k in range(taps):
                    o = (k + 0.5) / taps - 0.5
                    acc += _trilinear(atlas, ma, lod, ui + o * mu, vi + o * mv)
                col[idx] = acc * (1.0 / taps)
            taps *= 2
        col *= torch.where(hit, self._bright[m], torch.zeros_like(tt))[:, None]
        return col
