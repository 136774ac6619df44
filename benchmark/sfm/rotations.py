r"""Camera rotations of a clip without structure: pairwise homographies with known K, averaged.

When the camera only turns (pan, tilt, roll) there is no parallax, so SfM cannot triangulate
and finds no model; but then every pair of frames is related by the homography
``H = K R_ij K^-1`` (``R_ij = R_j R_i^T`` for world-to-camera rotations), whatever the scene.
With the intrinsics known, each pair whose matches a homography explains gives a relative
rotation ``R_ij = proj_SO3(K^-1 H K)``, and the per-frame rotations follow by rotation
averaging over the pairs.

The homography fit is OpenCV's (``cv2.findHomography``: RANSAC, then least-squares on the
inliers). Rotation averaging is written by hand (chordal L2: the spectral solution, then a
few block-coordinate refinements) because pycolmap's ``run_rotation_averaging`` needs a full
pose graph and reconstruction set up from a database, and for <= a few dozen frames the
closed form is a dozen lines that are easy to test against exact rotations.

A pair is *rotation-dominant* when the homography explains nearly all of its verified
matches and ``K^-1 H K`` is (up to scale) nearly a rotation: its singular values are equal for
a pure rotation, and spread apart under a translation seen over a planar or distant scene.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

#: Homography inlier threshold (pixels) for the fit and the rotation-dominance test.
H_THRESHOLD_PX = 1.5
#: A pair is rotation-dominant when the homography explains at least this share of its
#: verified matches ...
MIN_H_INLIER_RATIO = 0.9
#: ... and the smallest singular value of K^-1 H K is at least this fraction of the largest.
MIN_SINGULAR_RATIO = 0.98
#: Fewest matches for a pair to count.
MIN_PAIR_MATCHES = 30


@dataclass
class PairRotation:
    """One frame pair's relative rotation ``R_ij`` (x_j ~ K R_ij K^-1 x_i) and its support."""

    i: int
    j: int
    R: np.ndarray
    num_matches: int
    inlier_ratio: float
    singular_ratio: float

    @property
    def rotation_dominant(self) -> bool:
        return (
            self.inlier_ratio >= MIN_H_INLIER_RATIO
            and self.singular_ratio >= MIN_SINGULAR_RATIO
        )


@dataclass
class RotationResult:
    """Per-frame world-to-camera rotations (frame 0 = identity; None where unconnected)."""

    rotations: list[np.ndarray | None]
    pairs: list[PairRotation] = field(default_factory=list)

    @property
    def num_dominant(self) -> int:
        return sum(p.rotation_dominant for p in self.pairs)


def project_to_so3(M: np.ndarray) -> np.ndarray:
    """Nearest rotation (Frobenius) to a 3x3 matrix."""
    U, _, Vt = np.linalg.svd(M)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))])
    return U @ D @ Vt


def rotation_from_homography(H: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, float]:
    """``(R, singular_ratio)``: the rotation of ``K^-1 H K`` (scale and sign removed) and
    its smallest / largest singular value (1 for a pure rotation)."""
    K = np.asarray(K, dtype=np.float64)
    M = np.linalg.inv(K) @ np.asarray(H, dtype=np.float64) @ K
    if np.linalg.det(M) < 0:  # a homography is defined up to scale, including its sign
        M = -M
    s = np.linalg.svd(M, compute_uv=False)
    return project_to_so3(M), float(s[-1] / s[0])


def pair_rotation(
    i: int, j: int, pts_i: np.ndarray, pts_j: np.ndarray, K: np.ndarray, seed: int = 0
) -> PairRotation | None:
    """Fit ``pts_j ~ H pts_i`` (pixel coordinates, matched rows) and turn it into a rotation;
    None if there are too few matches or no homography."""
    if len(pts_i) < MIN_PAIR_MATCHES:
        return None
    cv2.setRNGSeed(seed)
    H, mask = cv2.findHomography(
        np.asarray(pts_i, np.float64), np.asarray(pts_j, np.float64), cv2.RANSAC,
        H_THRESHOLD_PX, maxIters=2000, confidence=0.999,
    )
    if H is None or mask is None:
        return None
    inliers = mask.ravel().astype(bool)
    if inliers.sum() >= 8:  # least-squares refit on the inliers (all of them, no RANSAC)
        H_ls, _ = cv2.findHomography(pts_i[inliers], pts_j[inliers], 0)
        H = H_ls if H_ls is not None else H
    R, ratio = rotation_from_homography(H, K)
    return PairRotation(i, j, R, len(pts_i), float(inliers.mean()), ratio)


def average_rotations(
    num_frames: int, pairs: list[PairRotation], iterations: int = 20
) -> list[np.ndarray | None]:
    """Chordal L2 rotation averaging of ``R_j = R_ij R_i`` over ``pairs`` (weights: matches).

    Frames not connected to frame 0's component come back None; the gauge is fixed by
    giving the lowest connected frame the identity."""
    # connected component of the lowest frame that has any pair
    adj: dict[int, set[int]] = {}
    for p in pairs:
        adj.setdefault(p.i, set()).add(p.j)
        adj.setdefault(p.j, set()).add(p.i)
    if not adj:
        return [None] * num_frames
    root = min(adj)
    comp, stack = {root}, [root]
    while stack:
        for nb in adj[stack.pop()]:
            if nb not in comp:
                comp.add(nb)
                stack.append(nb)
    nodes = sorted(comp)
    index = {f: k for k, f in enumerate(nodes)}
    used = [p for p in pairs if p.i in comp and p.j in comp]
    n = len(nodes)
    # Spectral initialisation: G[j, i] = w R_ij, G[i, j] = w R_ij^T, diagonal = total weight.
    G = np.zeros((3 * n, 3 * n))
    weight = np.zeros(n)
    for p in used:
        a, b, w = index[p.i], index[p.j], float(p.num_matches)
        G[3 * b : 3 * b + 3, 3 * a : 3 * a + 3] += w * p.R
        G[3 * a : 3 * a + 3, 3 * b : 3 * b + 3] += w * p.R.T
        weight[a] += w
        weight[b] += w
    for a in range(n):
        G[3 * a : 3 * a + 3, 3 * a : 3 * a + 3] += weight[a] * np.eye(3)
    _, vecs = np.linalg.eigh(G)
    V = vecs[:, -3:]
    # Each 3x3 block of V is R_a Q (one common Q in O(3), up to scale): its nearest
    # orthogonal matrix U_a gives R_a R_0^T = U_a U_0^T whatever det(Q) is.
    U = []
    for a in range(n):
        u, _, vt = np.linalg.svd(V[3 * a : 3 * a + 3])
        U.append(u @ vt)
    R = [project_to_so3(u @ U[0].T) for u in U]
    # Block-coordinate refinement of sum_ij w ||R_j - R_ij R_i||_F^2 (each step is exact).
    for _ in range(iterations):
        for a in range(n):
            acc = np.zeros((3, 3))
            for p in used:
                if index[p.j] == a:
                    acc += p.num_matches * (p.R @ R[index[p.i]])
                elif index[p.i] == a:
                    acc += p.num_matches * (p.R.T @ R[index[p.j]])
            if np.any(acc):
                R[a] = project_to_so3(acc)
        R = [r @ R[0].T for r in R]
    out: list[np.ndarray | None] = [None] * num_frames
    for f, r in zip(nodes, R, strict=True):
        out[f] = r
    return out


def rotations_from_matches(
    num_frames: int,
    matches: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]],
    K: np.ndarray,
    seed: int = 0,
) -> RotationResult:
    """Per-frame rotations from matched pixel coordinates of frame pairs ``(i, j)``.

    Only rotation-dominant pairs enter the averaging; every fitted pair is returned in
    ``pairs`` so the caller can say how many were rotation-dominant."""
    fitted = []
    for (i, j), (pi, pj) in sorted(matches.items()):
        pair = pair_rotation(i, j, pi, pj, K, seed)
        if pair is not None:
            fitted.append(pair)
    dominant = [p for p in fitted if p.rotation_dominant]
    return RotationResult(average_rotations(num_frames, dominant), fitted)
