"""Serving runtime: FeatureSpec, kernels, server launcher, client, CLI. Never imports PyTorch."""
