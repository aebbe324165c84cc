"""Run by tests/training/test_training.py under torchrun: fits a toy regression with DDP, saves this rank's weights."""

import sys
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

from speech2face.training import distributed
from speech2face.training.fit import FitConfig, fit


class Pairs(TensorDataset):
    def __getitem__(self, index):
        x, y = super().__getitem__(index)
        return {"x": x, "y": y}


def main(out_dir: Path) -> None:
    device = distributed.setup()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, generator=g)
    y = x @ torch.arange(8.0) + 1.0
    torch.manual_seed(0)  # same initial weights on every rank, as DDP expects
    model = torch.nn.Linear(8, 1)
    fit("toy", model, Pairs(x, y[:, None]),
        lambda m, b: {"total": (m(b["x"]) - b["y"]).pow(2).mean()},
        FitConfig(epochs=40, batch_size=16, lr=0.1, lr_decay=0.95), out_dir, device)
    torch.save(model.state_dict(), out_dir / f"rank{distributed.rank()}.pt")
    distributed.teardown()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
