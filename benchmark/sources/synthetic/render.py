"""Rendering of synthetic scenes: RGB and exact z-depth per camera, camera paths, and a
brute-force float64 ray caster for checks."""

from __future__ import annotations

import math

import numpy as np
import torch

from benchmark.sources.synthetic.camera import _CHUNK, _as_camera, _Camera
from benchmark.sources.synthetic.scene import SyntheticScene, _torch_threads


def _subpixel_offsets(s: int) -> torch.Tensor:
    """(s*s, 2) stratified offsets (x, y) in (-0.5, 0.5) of a regular s x s grid."""
    g = (torch.arange(s, dtype=torch.float32) + 0.5) / s - 0.5
    oy, ox = torch.meshgrid(g, g, indexing="ij")
    return torch.stack([ox.reshape(-1), oy.reshape(-1)], dim=1)


def _edge_mask(ids: torch.Tensor) -> torch.Tensor:
    """Pixels whose 8-neighbourhood holds more than one rectangle id (geometry edges)."""
    p = torch.nn.functional.pad(ids[None, None].float(), (1, 1, 1, 1), mode="replicate")[0, 0]
    H, W = ids.shape
    c = p[1:-1, 1:-1]
    edge = torch.zeros_like(ids, dtype=torch.bool)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            if dy == 1 and dx == 1:
                continue
            edge |= p[dy : dy + H, dx : dx + W] != c
    return edge


@torch.inference_mode()
def render(
    scene: SyntheticScene,
    K: np.ndarray,
    w2c: np.ndarray,
    width: int,
    height: int,
    supersample: int = 4,
    adaptive: bool = True,
    return_points: bool = False,
    threads: int | None = 1,
) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Render RGB and exact z-depth of ``scene`` for one pinhole camera.

    Why a hand-written ray caster: there is no OpenGL here, and a rasteriser would need its
    own exactness checks anyway. Every primitive is an axis-aligned rectangle, so a ray-plane
    test is a division and four comparisons; vectorised in torch (multi-threaded CPU), each
    rectangle is tested only on the pixels of its projected screen window, which makes the
    z-buffer pass cost a few image-sizes of work. The pass runs in float32 only to *choose*
    the visible rectangle; depth and points are then recomputed in float64 on that plane
    (float32 would leave ~1e-3 px of reprojection error), so depth is exact at pixel centres.

    Colour: the pixel-centre sample is shaded with trilinear mip-mapping (level from
    analytic ray differentials of the hit plane, up to 4 taps along the major axis of
    anisotropic footprints), which removes texture minification aliasing; pixels next to a
    geometry edge (a different rectangle in their 8-neighbourhood) are re-traced with
    ``supersample**2`` stratified sub-pixel rays and averaged, which anti-aliases
    silhouettes. Against 36-spp supersampling this scores 37.4 dB PSNR at 448x256 (isotropic
    trilinear: 32 dB; no edge supersampling: 33 dB). ``adaptive=False`` supersamples every
    pixel (reference mode, slow); ``supersample=1`` disables anti-aliasing of edges. Shading
    is view-independent (a fixed brightness per rectangle), so colours are consistent
    across views.

    Args:
        scene: the scene.
        K: (3, 3) intrinsics in pixels; w2c: (4, 4) world-to-camera, OpenCV axes.
        width, height: image size in pixels.
        return_points: also return the (H, W, 3) float32 world points hit by the pixel-centre
            rays (nan where nothing is hit).
        threads: torch intra-op threads for this call (None: torch's current setting). The
            default 1 is deliberate: on a shared 2-core machine with other jobs running,
            torch's 2-thread team waits on descheduled threads and a frame took 10-15x longer
            (9.5 s vs 0.7 s at 1024x576); pass 2 on an otherwise idle machine.

    Returns:
        rgb (H, W, 3) uint8, depth (H, W) float32 z-depth (inf where nothing is hit), and the
        points if asked.
    """
    with _torch_threads(threads):
        return _render(scene, _as_camera(K, w2c, width, height), supersample, adaptive,
                       return_points)  # fmt: skip


def _render(
    scene: SyntheticScene, cam: _Camera, supersample: int, adaptive: bool, return_points: bool
) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]:
    width, height = cam.width, cam.height
    d64 = cam.ray_grid()
    d32 = d64.float()
    ids = scene._trace_grid(cam, d32)
    depth64, pts64 = scene._exact_hits(cam, ids, d64)
    C32 = torch.from_numpy(cam.center).float()
    M32 = torch.from_numpy(cam.ray_matrix).float()
    dx, dy = M32[:, 0], M32[:, 1]
    flat_d = d32.reshape(3, -1).T
    col = scene._shade(ids.reshape(-1), depth64.reshape(-1).float(), flat_d, C32, dx, dy)
    s = int(supersample)
    if s > 1:
        edge = torch.ones_like(ids, dtype=torch.bool) if not adaptive else _edge_mask(ids)
        pix = edge.reshape(-1).nonzero().squeeze(1)
        offs = _subpixel_offsets(s)
        delta = offs[:, 0:1] * dx + offs[:, 1:2] * dy  # (S, 3)
        for k in range(0, pix.numel(), _CHUNK):
            p = pix[k : k + _CHUNK]
            iy, ix = p // width, p % width
            dirs = flat_d[p][:, None, :] + delta[None]
            t_sub, id_sub = scene._trace_subpixels(cam, iy, ix, dirs)
            c_sub = scene._shade(
                id_sub.reshape(-1), t_sub.reshape(-1), dirs.reshape(-1, 3), C32, dx / s, dy / s
            )
            col[p] = c_sub.reshape(p.numel(), s * s, 3).mean(dim=1)
    rgb = col.add_(0.5).clamp_(0, 255).to(torch.uint8).reshape(height, width, 3).numpy()
    depth = depth64.float().numpy()
    if return_points:
        return rgb, depth, pts64.float().numpy()
    return rgb, depth


@torch.inference_mode()
def render_depth(
    scene: SyntheticScene,
    K: np.ndarray,
    w2c: np.ndarray,
    width: int,
    height: int,
    return_points: bool = False,
    threads: int | None = 1,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Geometry only (no textures are made, so it is fast): the same depth (and points) as
    :func:`render` returns for this camera."""
    _, depth, pts = scene._geometry(_as_camera(K, w2c, width, height), threads)
    if return_points:
        return depth.float().numpy(), pts.float().numpy()
    return depth.float().numpy()


def render_frames(
    scene: SyntheticScene,
    K: np.ndarray,
    w2c_seq: np.ndarray,
    width: int,
    height: int,
    supersample: int = 4,
    threads: int | None = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Render a camera path: ``K`` (3, 3) shared or (F, 3, 3) per frame, ``w2c_seq``
    (F, 4, 4). Returns frames (F, H, W, 3) uint8 and depths (F, H, W) float32 z-depth.
    ``supersample`` and ``threads`` as in :func:`render`."""
    w2c_seq = np.asarray(w2c_seq, dtype=np.float64)
    K = np.asarray(K, dtype=np.float64)
    Ks = np.broadcast_to(K, (len(w2c_seq), 3, 3)) if K.ndim == 2 else K
    frames = np.empty((len(w2c_seq), height, width, 3), np.uint8)
    depths = np.empty((len(w2c_seq), height, width), np.float32)
    for f, (Kf, w2c) in enumerate(zip(Ks, w2c_seq, strict=True)):
        frames[f], depths[f] = render(
            scene, Kf, w2c, width, height, supersample=supersample, threads=threads
        )
    return frames, depths


@torch.inference_mode()
def cast_rays(
    scene: SyntheticScene, origins: np.ndarray, dirs: np.ndarray, threads: int | None = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force float64 ray casting against every rectangle, for checks and probes.

    Args:
        origins, dirs: (N, 3) world ray origins and directions (any length).

    Returns:
        t (N,) float64 ray parameter of the nearest hit in units of ``dirs`` (inf = miss) and
        the rectangle index (N,) int64 (-1 = miss).
    """
    o_all = torch.from_numpy(np.array(origins, dtype=np.float64).reshape(-1, 3))
    d_all = torch.from_numpy(np.array(dirs, dtype=np.float64).reshape(-1, 3))
    with _torch_threads(threads):
        t_out, id_out = _cast_chunks(scene, o_all, d_all)
    tmin = torch.cat(t_out) if t_out else torch.zeros(0, dtype=torch.float64)
    idx = torch.cat(id_out) if id_out else torch.zeros(0, dtype=torch.int64)
    return tmin.numpy(), idx.numpy()


def _cast_chunks(
    scene: SyntheticScene, o_all: torch.Tensor, d_all: torch.Tensor
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Nearest hit per ray, in chunks (the (chunk, M) tables bound the memory)."""
    a, b0, b1 = scene._axis, scene._b0, scene._b1
    t_out, id_out = [], []
    for k in range(0, len(o_all), _CHUNK):
        o, d = o_all[k : k + _CHUNK], d_all[k : k + _CHUNK]
        t = (scene._coord - o[:, a]) / d[:, a]
        p0 = o[:, b0] + t * d[:, b0]
        p1 = o[:, b1] + t * d[:, b1]
        ok = (t > 0) & (p0 >= scene._lo[:, 0]) & (p0 <= scene._hi[:, 0])
        ok &= (p1 >= scene._lo[:, 1]) & (p1 <= scene._hi[:, 1])
        t = torch.where(ok, t, torch.full_like(t, math.inf))
        tmin, idx = t.min(dim=1)
        t_out.append(tmin)
        id_out.append(torch.where(torch.isfinite(tmin), idx, torch.full_like(idx, -1)))
    return t_out, id_out
