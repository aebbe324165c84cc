"""The paper's evaluation: speech-to-face retrieval recall@K, and attribute agreement."""

from __future__ import annotations

import numpy as np

KS = (1, 2, 5, 10)


def distances(queries: np.ndarray, gallery: np.ndarray, metric: str) -> np.ndarray:
    """(Q, G) distances; cosine is 1 - cosine similarity."""
    if metric == "cosine":
        q = queries / np.linalg.norm(queries, axis=1, keepdims=True).clip(1e-12)
        g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True).clip(1e-12)
        return 1.0 - q @ g.T
    if metric == "l2":
        return np.sqrt(((queries[:, None, :] - gallery[None, :, :]) ** 2).sum(-1))
    if metric == "l1":
        return np.abs(queries[:, None, :] - gallery[None, :, :]).sum(-1)
    raise ValueError(f"unknown metric {metric!r}")


def recall_at_k(queries: np.ndarray, gallery: np.ndarray, truth: np.ndarray, metric: str,
                ks: tuple[int, ...] = KS) -> dict[int, float]:
    """Share of queries whose true gallery item ranks within the K nearest (ties count against)."""
    d = distances(queries, gallery, metric)
    true_d = d[np.arange(len(queries)), truth]
    rank = (d < true_d[:, None]).sum(axis=1) + (d == true_d[:, None]).sum(axis=1) - 1
    return {k: float((rank < k).mean()) for k in ks}


def chance_at_k(gallery_size: int, ks: tuple[int, ...] = KS) -> dict[int, float]:
    return {k: min(1.0, k / gallery_size) for k in ks}


def sliced_recall_at_k(queries: np.ndarray, gallery: np.ndarray, truth: np.ndarray, metric: str,
                       gallery_size: int, ks: tuple[int, ...]) -> tuple[dict[int, float], int]:
    """R@K averaged over galleries of `gallery_size` identities: the gallery cut into disjoint
    consecutive slices (a remainder shorter than a slice is left out, as in SF2F's evaluator), each
    slice ranked only by the queries of its own identities. Returns (recall per K, slices used).
    With fewer identities than one slice, one gallery of all of them."""
    size = min(gallery_size, len(gallery))
    slices = len(gallery) // size
    per_slice = []
    for s in range(slices):
        ids = np.arange(s * size, (s + 1) * size)
        mine = (truth >= ids[0]) & (truth <= ids[-1])
        per_slice.append(recall_at_k(queries[mine], gallery[ids], truth[mine] - ids[0], metric, ks))
    return {k: float(np.mean([r[k] for r in per_slice])) for k in ks}, slices


def confusion(true_labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Row-normalised confusion matrix (rows: trait of the true face; columns: of the reconstruction)."""
    matrix = np.zeros((n_classes, n_classes))
    np.add.at(matrix, (true_labels, predicted), 1)
    return matrix / matrix.sum(axis=1, keepdims=True).clip(1)
