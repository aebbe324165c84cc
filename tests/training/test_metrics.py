"""Retrieval recall@K and confusion matrices on cases whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from speech2face.training.evaluation.metrics import chance_at_k, confusion, recall_at_k


@pytest.mark.parametrize("metric", ["cosine", "l2", "l1"])
def test_perfect_queries_are_found_first(metric):
    gallery = np.random.default_rng(0).standard_normal((50, 16))
    recall = recall_at_k(gallery + 1e-3, gallery, np.arange(50), metric)
    assert recall[1] == 1.0


def test_random_queries_score_near_chance():
    rng = np.random.default_rng(1)
    gallery = rng.standard_normal((200, 16))
    queries = rng.standard_normal((4000, 16))
    truth = rng.integers(0, 200, 4000)
    recall = recall_at_k(queries, gallery, truth, "cosine")
    chance = chance_at_k(200)
    for k in (1, 5, 10):
        assert abs(recall[k] - chance[k]) < 0.02


def test_ties_do_not_count_as_hits():
    gallery = np.ones((10, 4))
    assert recall_at_k(np.ones((1, 4)), gallery, np.array([3]), "l2")[1] == 0.0


def test_confusion_rows_are_normalised():
    m = confusion(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 2)
    assert np.allclose(m, [[0.5, 0.5], [0.0, 1.0]])
