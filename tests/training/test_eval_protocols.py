"""Retrieval protocols of `s2f eval`: the paper's (one gallery of every held-out identity) and
SF2F's (galleries of 100 identities, averaged over disjoint slices), on features whose ranks are
known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from speech2face.training.evaluation.evaluate import retrieval_protocols
from speech2face.training.evaluation.metrics import recall_at_k, sliced_recall_at_k


def _features(n_ids, clips, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    gallery = rng.standard_normal((n_ids, dim))
    truth = np.repeat(np.arange(n_ids), clips)
    return gallery, truth


def test_perfect_queries_score_one_under_both_protocols():
    gallery, truth = _features(250, 2)
    result = retrieval_protocols(gallery[truth] + 1e-3, gallery, truth)
    assert result["paper"]["cosine"]["R@1"] == result["paper"]["l1"]["R@1"] == 1.0
    assert result["paper"]["gallery_size"] == 250 and result["paper"]["chance"]["R@1"] == 1 / 250
    sf2f = result["sf2f"]
    assert (sf2f["r_at_1"], sf2f["gallery_size"], sf2f["galleries"]) == (1.0, 100, 2)  # 50 left out
    assert sf2f["chance"] == {"r_at_1": 0.01, "r_at_5": 0.05, "r_at_10": 0.1}


def test_sf2f_ranks_only_within_each_slice():
    """Every query's nearest gallery item is another identity's face in a *different* slice, and its
    own face comes second overall: R@1 is 0 over one gallery, 1 within its slice of 100."""
    gallery, truth = _features(200, 1)
    noise = 1e-2 * np.random.default_rng(1).standard_normal((100, 16))
    gallery = np.concatenate([gallery[:100], gallery[:100] + noise])
    queries = np.concatenate([gallery[100:], gallery[:100]])  # id i queries with the face of i +- 100
    queries = queries + 1e-4
    truth = np.arange(200)
    assert recall_at_k(queries, gallery, truth, "cosine")[1] == 0.0
    assert recall_at_k(queries, gallery, truth, "cosine")[2] == 1.0
    recall, slices = sliced_recall_at_k(queries, gallery, truth, "cosine", 100, (1, 5, 10))
    assert slices == 2 and recall[1] == 1.0


def test_sf2f_averages_slices_and_small_galleries_use_all_identities():
    gallery, truth = _features(200, 1, seed=2)
    queries = gallery.copy()
    queries[100:] = -queries[100:]  # the second slice's queries point away from their faces
    recall, slices = sliced_recall_at_k(queries, gallery, truth, "cosine", 100, (1,))
    assert slices == 2 and recall[1] == pytest.approx(0.5)
    recall, slices = sliced_recall_at_k(queries[:30], gallery[:30], truth[:30], "cosine", 100, (1,))
    assert slices == 1 and recall[1] == 1.0
