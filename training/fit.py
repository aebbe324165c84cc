"""One training loop for every stage: DDP, AMP on GPU, resume, tqdm, TensorBoard scalars."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm import tqdm

from speech2face.engine.contract.fileio import atomic_path
from speech2face.training import distributed


@dataclasses.dataclass(frozen=True)
class FitConfig:
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.999)   # the paper's Adam beta1 = 0.5
    eps: float = 1e-4
    lr_decay: float = 0.95                      # per epoch (the paper: x0.95 every 10k iterations)
    num_workers: int = 0
    seed: int = 0


def _save_state(path: Path, model: nn.Module, optimizer, scheduler, epoch: int) -> None:
    with atomic_path(path) as tmp:
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "epoch": epoch}, tmp)


def _resume(path: Path, model: nn.Module, optimizer, scheduler, device: torch.device) -> int:
    """Loads the state after the last finished epoch; returns the epoch to start from."""
    state = torch.load(path, map_location=device, weights_only=False)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return state["epoch"] + 1


def _loader(dataset: Dataset, config: FitConfig) -> tuple[DataLoader, DistributedSampler | None]:
    sampler = DistributedSampler(dataset, shuffle=True, seed=config.seed) if distributed.world_size() > 1 else None
    loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=sampler is None, sampler=sampler,
                        num_workers=config.num_workers, drop_last=len(dataset) > config.batch_size,
                        generator=torch.Generator().manual_seed(config.seed))
    return loader, sampler


def _summary_writer(out_dir: Path, name: str):
    """TensorBoard on the main process, when it is installed (it is optional)."""
    if not distributed.is_main():
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(out_dir / "tensorboard" / name))


@dataclasses.dataclass
class _Step:
    """What one optimisation step needs besides the batch."""

    name: str
    model: nn.Module            # the (possibly DDP-wrapped) model
    loss_fn: Callable[[nn.Module, dict], dict[str, torch.Tensor]]
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    device: torch.device
    use_amp: bool
    writer: object = None
    step: int = 0

    def __call__(self, batch: dict) -> dict[str, torch.Tensor]:
        batch = {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
        with torch.autocast(self.device.type, enabled=self.use_amp):
            terms = self.loss_fn(self.model, batch)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(terms["total"]).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.writer is not None:
            for key, value in terms.items():
                self.writer.add_scalar(f"{self.name}/{key}", float(value.detach()), self.step)
        self.step += 1
        return terms


def _train_epoch(step: _Step, loader: DataLoader, label: str) -> dict[str, float]:
    """One pass over the loader; the mean of each loss term."""
    step.model.train()
    totals: dict[str, float] = {}
    bar = tqdm(loader, desc=label, disable=not distributed.is_main(), leave=False, mininterval=5)
    for batch in bar:
        terms = step(batch)
        for key, value in terms.items():
            totals[key] = totals.get(key, 0.0) + float(value.detach())
        bar.set_postfix(loss=f"{float(terms['total'].detach()):.4f}", refresh=False)
    return {k: v / max(1, len(loader)) for k, v in totals.items()}


def fit(
    name: str,
    model: nn.Module,
    dataset: Dataset,
    loss_fn: Callable[[nn.Module, dict], dict[str, torch.Tensor]],
    config: FitConfig,
    out_dir: Path,
    device: torch.device,
    resume: bool = True,
) -> nn.Module:
    """Trains `model` on `dataset`; `loss_fn(model, batch)` returns named terms with 'total'.

    The state after each epoch goes to `out_dir/<name>.state.pt`; with `resume`, training
    continues from it. Returns the unwrapped model in eval mode.
    """
    torch.manual_seed(config.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=config.lr, betas=config.betas, eps=config.eps)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_decay)
    state_path = out_dir / f"{name}.state.pt"
    start_epoch = _resume(state_path, model, optimizer, scheduler, device) if resume and state_path.exists() else 0
    wrapped = DistributedDataParallel(model) if distributed.world_size() > 1 else model
    loader, sampler = _loader(dataset, config)
    use_amp = device.type == "cuda"
    step = _Step(name, wrapped, loss_fn, optimizer, torch.amp.GradScaler("cuda", enabled=use_amp), device, use_amp,
                 _summary_writer(out_dir, name), start_epoch * len(loader))
    for epoch in range(start_epoch, config.epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        means = _train_epoch(step, loader, f"{name} {epoch + 1}/{config.epochs}")
        scheduler.step()
        if distributed.is_main():
            print(f"{name} epoch {epoch + 1}/{config.epochs}: " +
                  " ".join(f"{k}={v:.4f}" for k, v in means.items()), flush=True)
            _save_state(state_path, model, optimizer, scheduler, epoch)
        distributed.barrier()
    if step.writer is not None:
        step.writer.close()
    return model.eval()
