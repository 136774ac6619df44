"""Camera poses from frames: COLMAP (pycolmap) mapping trials,
plausibility, rotation-only recovery."""
