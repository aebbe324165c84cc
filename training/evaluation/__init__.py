"""Held-out evaluation: retrieval R@K (paper and SF2F protocols), attribute agreement, reports."""
