"""One training loop for every stage: DDP, AMP on GPU, resume, tqdm, TensorBoard scalars."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm import tqdm

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
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "epoch": epoch}, tmp)
    os.replace(tmp, path)


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
    start_epoch = 0
    if resume and state_path.exists():
        state = torch.load(state_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch = state["epoch"] + 1
    wrapped = DistributedDataParallel(model) if distributed.world_size() > 1 else model
    sampler = DistributedSampler(dataset, shuffle=True, seed=config.seed) if distributed.world_size() > 1 else None
    loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=sampler is None, sampler=sampler,
                        num_workers=config.num_workers, drop_last=len(dataset) > config.batch_size,
                        generator=torch.Generator().manual_seed(config.seed))
    writer = None
    if distributed.is_main():
        try:
            from torch.utils.tensorboard import SummaryWriter
            writer = SummaryWriter(str(out_dir / "tensorboard" / name))
        except ImportError:  # tensorboard is optional
            writer = None
    use_amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    step = start_epoch * len(loader)
    for epoch in range(start_epoch, config.epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        wrapped.train()
        totals: dict[str, float] = {}
        bar = tqdm(loader, desc=f"{name} {epoch + 1}/{config.epochs}", disable=not distributed.is_main(),
                   leave=False, mininterval=5)
        for batch in bar:
            batch = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
            with torch.autocast(device.type, enabled=use_amp):
                terms = loss_fn(wrapped, batch)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(terms["total"]).backward()
            scaler.step(optimizer)
            scaler.update()
            for key, value in terms.items():
                totals[key] = totals.get(key, 0.0) + float(value.detach())
            if writer is not None:
                for key, value in terms.items():
                    writer.add_scalar(f"{name}/{key}", float(value.detach()), step)
            step += 1
            bar.set_postfix(loss=f"{float(terms['total'].detach()):.4f}", refresh=False)
        scheduler.step()
        if distributed.is_main():
            means = {k: v / max(1, len(loader)) for k, v in totals.items()}
            print(f"{name} epoch {epoch + 1}/{config.epochs}: " +
                  " ".join(f"{k}={v:.4f}" for k, v in means.items()), flush=True)
            _save_state(state_path, model, optimizer, scheduler, epoch)
        distributed.barrier()
    if writer is not None:
        writer.close()
    return model.eval()
