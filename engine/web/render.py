"""Pictures for the page, NumPy only: the face enlarged without blurring, the feature as bars, and
the cosine of two features."""

from __future__ import annotations

import numpy as np

FACE_PIXELS = 256
PLOT_SIZE = (180, 768)                     # height, width of the feature's bar chart
POSITIVE, NEGATIVE, AXIS, BACKGROUND = (37, 99, 235), (220, 38, 38), (120, 120, 120), (255, 255, 255)


def upscale(image: np.ndarray, pixels: int = FACE_PIXELS) -> np.ndarray:
    """(H, W, 3) uint8 -> at least `pixels` high, each source pixel repeated (nearest neighbour):
    the model's 64 x 64 face stays sharp instead of being smoothed into a blur."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"a face is (H, W, 3), got {image.shape}")
    factor = max(1, -(-pixels // image.shape[0]))
    return np.ascontiguousarray(image.repeat(factor, axis=0).repeat(factor, axis=1), dtype=np.uint8)


def feature_bars(feature: np.ndarray, size: tuple[int, int] = PLOT_SIZE) -> np.ndarray:
    """The feature's components as a bar chart around a zero line, blue up, red down, scaled to the
    largest magnitude: an (H, W, 3) uint8 image."""
    values = np.asarray(feature, dtype=np.float64).reshape(-1)
    height, width = size
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = BACKGROUND
    if values.size == 0:
        return canvas
    middle = height // 2
    peak = float(np.max(np.abs(values))) or 1.0
    lengths = np.round(np.abs(values) / peak * (middle - 2)).astype(int)
    edges = np.linspace(0, width, values.size + 1).round().astype(int)
    for value, length, left, right in zip(values, lengths, edges[:-1], edges[1:]):
        right = max(left + 1, right - 1 if right - left > 2 else right)   # a gap between bars when there is room
        if value >= 0:
            canvas[middle - length:middle, left:right] = POSITIVE
        else:
            canvas[middle + 1:middle + 1 + length, left:right] = NEGATIVE
    canvas[middle] = AXIS
    return canvas


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two features (1: the same direction); 0.0 when either is all zeros."""
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"features of different sizes: {a.size} and {b.size}")
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / norm) if norm > 0 else 0.0
