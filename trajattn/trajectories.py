r"""Pixel trajectories from one image, its depth and a camera path (paper Alg. 3).

Conventions (the same as ``benchmark.cameras``; this package never imports ``benchmark``):

- ``K`` is 3x3 in pixels; ``w2c`` is (F, 4, 4) world-to-camera with OpenCV axes; frame 0 is
  the view the image and depth belong to.
- Pixel coordinates are continuous with the origin at the image's top-left corner: pixel
  (row i, col j) covers ``[j, j+1) x [i, i+1)`` and its centre is ``(j + 0.5, i + 0.5)``
  (COLMAP's convention).
- ``depth`` is z-depth in the frame-0 camera (not distance along the ray).
- Trajectories: ``tracks (F, L, 2)`` pixel xy in each frame and ``visible (F, L)``; frame 0 is
  the pixel grid itself.

Unlike the official code, K and the path are inputs (not a fixed focal of 260 and look-at
orbits), and points that leave the image are invalid instead of being clamped to the border.

No library computes occlusion-aware reprojection of a depth map, so the z-buffer is written
here, vectorised in torch over frames and pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from trajattn.geometry import relative_w2c

#: Neighbouring depths closer than this ratio are treated as one continuous surface when the
#: z-buffer rasterises the quad between them (a depth edge larger than this is an occluder).
CONTINUITY_RTOL = 0.05
#: Largest screen extent (pixels) a single source quad may cover in the z-buffer; larger
#: quads are stretched across a depth edge or a grazing view and only mark their own pixel.
MAX_QUAD_EXTENT = 3
#: Default relative tolerance of the occlusion test: the continuity tolerance, so that the
#: tolerances agree: a neighbour close enough in depth to be the same surface when the
#: z-buffer rasterises it is never an occluder either (with 3 % < 5 % steep continuous
#: surfaces occluded their own points).
OCCLUSION_RTOL = CONTINUITY_RTOL
#: Two frame-0 neighbours lie on one plane when the second difference of inverse depth along
#: their direction is within this fraction of the inverse depth (1/z is affine in the pixel
#: coordinates on a plane seen by a pinhole camera, so it is exactly 0 there).
PLANARITY_RTOL = 0.01


@dataclass(frozen=True)
class CameraTrajectories:
    """Trajectories of frame-0 pixels through a camera path.

    Attributes:
        tracks: (F, L, 2) float32 pixel xy of each tracked point in each frame.
        visible: (F, L) bool: in front of the camera, inside the image and not occluded.
        depths: (F, L) float32 z-depth of each point in each frame's camera.
        grid_shape: (h, w) of the tracked pixel grid, ``L == h * w`` (row-major).
        stride: pixel stride of the tracked grid in frame 0.
    """

    tracks: np.ndarray
    visible: np.ndarray
    depths: np.ndarray
    grid_shape: tuple[int, int]
    stride: int

    @property
    def num_frames(self) -> int:
        return int(self.tracks.shape[0])


def _check_inputs(depth: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    depth = np.array(depth, dtype=np.float64)  # copies: torch needs writable arrays
    K = np.array(K, dtype=np.float64)
    if depth.ndim != 2:
        raise ValueError(f"depth must have shape (H, W), got {depth.shape}")
    if K.shape != (3, 3):
        raise ValueError(f"K must have shape (3, 3), got {K.shape}")
    return depth, K


def unproject_depth(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Frame-0 camera coordinates (H, W, 3) of every pixel centre given z-depth."""
    depth, K = _check_inputs(depth, K)
    h, w = depth.shape
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    rays = np.stack([u, v, np.ones_like(u)], axis=-1) @ np.linalg.inv(K).T
    return rays * depth[..., None]


def project_points(
    points: torch.Tensor, K: torch.Tensor, rel: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Project frame-0 camera points (N, 3) into every frame: returns uv (F, N, 2), z (F, N)."""
    cam = points @ rel[:, :3, :3].transpose(1, 2) + rel[:, None, :3, 3]
    z = cam[..., 2]
    pix = cam @ K.T
    safe_z = torch.where(z.abs() > 1e-12, z, torch.full_like(z, 1e-12))
    uv = pix[..., :2] / safe_z[..., None]
    return uv, z


def zbuffer(
    uv: torch.Tensor,
    z: torch.Tensor,
    source_depth: torch.Tensor,
    height: int,
    width: int,
) -> torch.Tensor:
    """Rasterise reprojected depth pixels into per-frame z-buffers (F, height, width).

    Each source pixel and its right/down neighbours span a quad in the target frame; when the
    four source depths are one continuous surface, every target pixel whose centre lies in the
    quad's bounding box receives the quad's *farthest* corner depth. This closes the gaps that
    plain point splatting leaves where the surface is magnified (dolly in, oblique faces
    turning frontal), so points behind it are still found occluded; the farthest corner (not
    the nearest) keeps a steep but continuous surface from occluding its own points (with the
    nearest corner, 3% of a synthetic room's pixels were "occluded" by an identity camera).
    Each point also marks its own pixel with its exact depth. Empty pixels hold +inf.
    """
    num_frames = uv.shape[0]
    h0, w0 = source_depth.shape
    uv = uv.reshape(num_frames, h0, w0, 2)
    z = z.reshape(num_frames, h0, w0)
    front = (z > 0) & (source_depth > 0)[None]
    flat = torch.full((num_frames * height * width,), float("inf"), dtype=z.dtype)
    frame_offset = (torch.arange(num_frames) * height * width).view(num_frames, 1, 1)

    def splat(cols: torch.Tensor, rows: torch.Tensor, depth: torch.Tensor, ok: torch.Tensor):
        ok = ok & (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
        index = (frame_offset + rows * width + cols)[ok]
        flat.scatter_reduce_(0, index, depth[ok], reduce="amin", include_self=True)

    # Own pixel of every point in front of the camera.
    splat(torch.floor(uv[..., 0]).long(), torch.floor(uv[..., 1]).long(), z, front)

    # Quads between (i, j), (i, j+1), (i+1, j), (i+1, j+1) on continuous surfaces.
    d = source_depth
    corners_d = torch.stack([d[:-1, :-1], d[:-1, 1:], d[1:, :-1], d[1:, 1:]])
    continuous = (corners_d.amax(0) <= corners_d.amin(0) * (1 + CONTINUITY_RTOL)) & (
        corners_d.amin(0) > 0
    )
    cu = torch.stack([uv[:, :-1, :-1, 0], uv[:, :-1, 1:, 0], uv[:, 1:, :-1, 0], uv[:, 1:, 1:, 0]])
    cv = torch.stack([uv[:, :-1, :-1, 1], uv[:, :-1, 1:, 1], uv[:, 1:, :-1, 1], uv[:, 1:, 1:, 1]])
    cz = torch.stack([z[:, :-1, :-1], z[:, :-1, 1:], z[:, 1:, :-1], z[:, 1:, 1:]])
    quad_ok = continuous[None] & (cz.amin(0) > 0)
    col_lo = torch.ceil(cu.amin(0) - 0.5)
    col_hi = torch.floor(cu.amax(0) - 0.5)
    row_lo = torch.ceil(cv.amin(0) - 0.5)
    row_hi = torch.floor(cv.amax(0) - 0.5)
    quad_ok &= (col_hi - col_lo < MAX_QUAD_EXTENT) & (row_hi - row_lo < MAX_QUAD_EXTENT)
    quad_z = cz.amax(0)
    col_lo, row_lo = col_lo.long(), row_lo.long()
    col_hi, row_hi = col_hi.long(), row_hi.long()
    for dr in range(MAX_QUAD_EXTENT):  # constant 3x3 footprint offsets, not a loop over data
        for dc in range(MAX_QUAD_EXTENT):
            rows, cols = row_lo + dr, col_lo + dc
            ok = quad_ok & (rows <= row_hi) & (cols <= col_hi)
            splat(cols, rows, quad_z, ok)
    return flat.view(num_frames, height, width)


@dataclass(frozen=True)
class Reprojection:
    """Frame-0 depth reprojected into every frame of a path, with each frame's z-buffer.

    Attributes:
        rel: (F, 4, 4) frame-0 camera -> frame-i camera transforms.
        valid_depth: (H, W) bool, finite positive depth.
        filled: (H, W) depth with invalid pixels set to 0.
        points: (H, W, 3) frame-0 camera coordinates of the pixel centres.
        uv, z: (F, H*W, 2) pixel xy and (F, H*W) depth of every pixel in every frame.
        zbuf: (F, H, W) float32 z-buffer (+inf where nothing lands).
    """

    rel: torch.Tensor
    valid_depth: np.ndarray
    filled: np.ndarray
    points: np.ndarray
    uv: torch.Tensor
    z: torch.Tensor
    zbuf: torch.Tensor


def reproject_depth(depth: np.ndarray, K: np.ndarray, w2c: np.ndarray) -> Reprojection:
    """Reproject every frame-0 pixel with its depth into each frame and rasterise z-buffers
    (shared by Alg. 3 trajectories and depth warping)."""
    depth, K = _check_inputs(depth, K)
    rel = torch.from_numpy(relative_w2c(w2c))
    height, width = depth.shape
    valid_depth = np.isfinite(depth) & (depth > 0)
    filled = np.where(valid_depth, depth, 0.0)
    points = unproject_depth(filled, K)
    uv, z = project_points(torch.from_numpy(points.reshape(-1, 3)), torch.from_numpy(K), rel)
    # float32 is ample for the z-buffer (1e-4 px at 4K) and halves its memory.
    zbuf = zbuffer(uv.float(), z.float(), torch.from_numpy(filled).float(), height, width)
    return Reprojection(rel, valid_depth, filled, points, uv, z, zbuf)


def surface_normals(points: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Unit normals (H, W, 3) of the surface seen in a depth map, facing the camera, from
    central differences of the unprojected points; zero where a neighbour lies across a depth
    edge (normals there are not defined by the depth map)."""
    normals = np.zeros_like(points)
    dx = points[1:-1, 2:] - points[1:-1, :-2]
    dy = points[2:, 1:-1] - points[:-2, 1:-1]
    n = np.cross(dx, dy)
    centre = points[1:-1, 1:-1]
    n *= np.where(np.sum(n * centre, axis=-1, keepdims=True) > 0, -1.0, 1.0)  # face the camera
    norm = np.linalg.norm(n, axis=-1, keepdims=True)
    d = depth
    near = np.stack([d[1:-1, 2:], d[1:-1, :-2], d[2:, 1:-1], d[:-2, 1:-1], d[1:-1, 1:-1]])
    smooth = (near.max(0) <= near.min(0) * (1 + CONTINUITY_RTOL)) & (near.min(0) > 0)
    normals[1:-1, 1:-1] = np.where(smooth[..., None] & (norm > 0), n / np.maximum(norm, 1e-30), 0)
    return normals


#: The 8 neighbour offsets (row, col) of a pixel.
_NEIGHBOURS = tuple((dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0))


def _shifted(a: torch.Tensor, dr: int, dc: int, fill: float) -> torch.Tensor:
    """``out[..., i, j] = a[..., i + dr, j + dc]`` (``fill`` outside the grid)."""
    h, w = a.shape[-2:]
    out = torch.full_like(a, fill)
    rs, re = max(0, -dr), min(h, h - dr)
    cs, ce = max(0, -dc), min(w, w - dc)
    if rs < re and cs < ce:
        out[..., rs:re, cs:ce] = a[..., rs + dr : re + dr, cs + dc : ce + dc]
    return out


def coplanar_neighbour_depth(filled: np.ndarray, z: torch.Tensor) -> torch.Tensor:
    r"""Per frame and pixel, the smallest frame-i depth of the pixel's coplanar neighbours.

    A neighbour ``n = p + d`` (8-neighbourhood) is coplanar with ``p`` when inverse depth is
    affine along ``d`` through them: ``|1/z(p-d) - 2/z(p) + 1/z(p+d)|`` or ``|1/z(p) - 2/z(p+d) +
    1/z(p+2d)|`` is at most :data:`PLANARITY_RTOL` of the inverse depth. Points of one plane
    never occlude each other from a camera on their side (the back-face test covers the other
    side), so a z-buffer value no nearer than such a neighbour is the point's own surface,
    however steep: it is what a pure rotation produces where it packs two neighbours into one
    pixel. A depth edge breaks the affinity, so an occluder across it is never excused.

    Args:
        filled: (H, W) frame-0 depth, 0 where invalid; z: (F, H*W) frame-i depths.

    Returns:
        (F, H, W) float: +inf where no neighbour is coplanar.
    """
    height, width = filled.shape
    inv = torch.from_numpy(np.where(filled > 0, 1.0 / np.where(filled > 0, filled, 1.0), np.nan))
    zf = z.reshape(-1, height, width)
    best = torch.full_like(zf, float("inf"))
    for dr, dc in _NEIGHBOURS:
        before = _shifted(inv, -dr, -dc, float("nan"))
        after = _shifted(inv, dr, dc, float("nan"))
        after2 = _shifted(inv, 2 * dr, 2 * dc, float("nan"))
        tol = PLANARITY_RTOL * inv
        affine = ((before - 2 * inv + after).abs() <= tol) | (
            (inv - 2 * after + after2).abs() <= PLANARITY_RTOL * after
        )  # NaN (invalid or outside) compares False
        z_n = _shifted(zf, dr, dc, float("inf"))
        best = torch.where(affine[None], torch.minimum(best, z_n), best)
    return best


def trajectories_from_depth(
    depth: np.ndarray,
    K: np.ndarray,
    w2c: np.ndarray,
    stride: int = 1,
    occlusion_rtol: float = OCCLUSION_RTOL,
) -> CameraTrajectories:
    r"""Trajectories of frame-0 pixels along a camera path (paper Alg. 3).

    Args:
        depth: (H, W) z-depth of the frame-0 view; non-finite or non-positive depth marks a
            pixel as untrackable (invalid in every frame).
        K: (3, 3) intrinsics in pixels, shared by all frames (frames have the image's size).
        w2c: (F, 4, 4) world-to-camera per frame; frame 0 is the image's view.
        stride: track every ``stride``-th pixel in x and y (the z-buffer always uses all).
        occlusion_rtol: a point is occluded in frame i when its depth exceeds the frame's
            z-buffer at its pixel by more than this fraction (default: the continuity
            tolerance) and that z-buffer value is nearer than all its coplanar neighbours
            (:func:`coplanar_neighbour_depth`): tolerances chosen so that a pure rotation,
            which cannot occlude anything, marks no in-image point invalid.

    Returns:
        CameraTrajectories with tracks (F, L, 2), visible (F, L), depths (F, L).
    """
    depth, K = _check_inputs(depth, K)
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    rep = reproject_depth(depth, K, w2c)
    rel, valid_depth, filled, points = rep.rel, rep.valid_depth, rep.filled, rep.points
    uv, z, zbuf = rep.uv, rep.z, rep.zbuf
    height, width = depth.shape

    rows = np.arange(0, height, stride)
    cols = np.arange(0, width, stride)
    sel = torch.from_numpy((rows[:, None] * width + cols[None, :]).reshape(-1))
    uv_s, z_s = uv[:, sel], z[:, sel]
    ok_depth = torch.from_numpy(valid_depth.reshape(-1))[sel]

    inside = (uv_s[..., 0] >= 0) & (uv_s[..., 0] < width) & (uv_s[..., 1] >= 0)
    inside &= uv_s[..., 1] < height
    front = z_s > 0
    pix_c = torch.floor(uv_s[..., 0]).long().clamp(0, width - 1)
    pix_r = torch.floor(uv_s[..., 1]).long().clamp(0, height - 1)
    frame_idx = torch.arange(rel.shape[0])[:, None]
    z_buf = zbuf[frame_idx, pix_r, pix_c]
    own_surface = coplanar_neighbour_depth(filled, z).reshape(rel.shape[0], -1)[:, sel]
    # The z-buffer is float32: a neighbour's own depth comes back rounded to ~1e-7.
    unoccluded = (z_s <= z_buf * (1 + occlusion_rtol)) | (z_buf >= own_surface * (1 - 1e-6))
    # Back-face test: a surface turned away from frame i's camera is hidden by the object it
    # belongs to even when the occluding face is too close in depth for the z-buffer (e.g.
    # two faces of a box meeting at an edge).
    normals = torch.from_numpy(surface_normals(points, filled).reshape(-1, 3))[sel]
    normals_f = normals @ rel[:, :3, :3].transpose(1, 2).double()
    cam_points = torch.from_numpy(points.reshape(-1, 3))[sel]
    cam_f = cam_points @ rel[:, :3, :3].transpose(1, 2) + rel[:, None, :3, 3]
    facing = (normals_f * cam_f).sum(-1) <= 0
    visible = front & inside & unoccluded & facing & ok_depth[None]

    # Frame 0 is the pixel grid itself, exactly (no round trip through K and depth).
    grid_u, grid_v = np.meshgrid(cols + 0.5, rows + 0.5)
    uv_s[0] = torch.from_numpy(np.stack([grid_u, grid_v], -1).reshape(-1, 2))
    visible[0] = ok_depth
    return CameraTrajectories(
        tracks=uv_s.numpy().astype(np.float32),
        visible=visible.numpy(),
        depths=z_s.numpy().astype(np.float32),
        grid_shape=(len(rows), len(cols)),
        stride=stride,
    )
