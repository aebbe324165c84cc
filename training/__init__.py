"""PyTorch models, losses, data sets, training loop and evaluation (imports PyTorch)."""
