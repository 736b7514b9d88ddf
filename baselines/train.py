"""The training loop shared by every method: seeded, with a validation split, early stopping, a plateau learning-rate
schedule, and the best weights (lowest validation loss) restored at the end, not the last ones."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

# loss_fn(model, batch, epoch) -> scalar loss. Training passes the epoch (counted from 1); validation passes None,
# meaning "the final objective" (e.g. RCML's fully annealed KL term), so that validation losses compare across epochs.
LossFn = Callable[[nn.Module, dict[str, torch.Tensor], int | None], torch.Tensor]


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 5  # early stopping: epochs without a lower validation loss
    min_epochs: int = 0  # no early stop before this epoch (an annealed loss's validation may rise while it anneals)
    lr_patience: int = 2  # ReduceLROnPlateau
    lr_factor: float = 0.5
    val_fraction: float = 0.1
    seed: int = 0
    split_seed: int | None = None  # the validation split's seed; None: `seed`. Deep Ensemble members share one split
    device: str | None = None  # None: CUDA when available, else CPU
    progress: bool = True


def resolve_device(device=None) -> torch.device:
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def split_indices(labels: torch.Tensor, fraction: float, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """(train, validation) indices: fraction * n_c of each class c (rounded half up) for validation, stratified; when
    that leaves no validation sample at all (tiny classes), a random fraction * n instead, at least one."""
    n = len(labels)
    order = torch.randperm(n, generator=generator)
    if fraction <= 0 or n < 2:
        return order, order[:0]
    val = []
    for c in torch.unique(labels):
        members = order[labels[order] == c]  # a random order within the class
        val.append(members[: math.floor(fraction * len(members) + 0.5)])
    val = torch.cat(val)
    if len(val) == 0:
        val = order[: max(1, math.floor(fraction * n + 0.5))]
    is_val = torch.zeros(n, dtype=torch.bool)
    is_val[val] = True
    return order[~is_val[order]], torch.sort(val).values


def batches(data: dict[str, torch.Tensor], indices: torch.Tensor, batch_size: int, device) -> Iterator[dict]:
    for start in range(0, len(indices), batch_size):
        chosen = indices[start : start + batch_size]
        yield {key: value[chosen].to(device, non_blocking=True) for key, value in data.items()}


def evaluate_loss(
    model: nn.Module, loss_fn: LossFn, data: dict, indices: torch.Tensor, batch_size: int, device=None, seed: int = 0
) -> float:
    """Mean loss over `indices`, in eval mode (dropout off), with the final objective (epoch None).

    Random draws inside the loss (the sampling softmax) come from a generator reset to `seed` each call, so the same
    weights always get the same loss and the epochs of a run are compared on the same draws; the global random state
    is left as it was.
    """
    device = resolve_device(device)
    model.eval()
    total = 0.0
    with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for batch in batches(data, indices, batch_size, device):
            total += loss_fn(model, batch, None).item() * len(next(iter(batch.values())))
    return total / max(1, len(indices))


def train(model: nn.Module, loss_fn: LossFn, data: dict[str, torch.Tensor], config: TrainConfig) -> dict:
    """Train `model` in place on `data` (tensors with one row per record; "label" required) and return the history.

    A `val_fraction` of the records (stratified by label) is held out; every epoch ends with its validation loss, which
    drives ReduceLROnPlateau and early stopping (`patience`), and the weights of the epoch with the lowest one are
    restored at the end. Without validation records the training loss plays that part. Everything random (shuffling,
    the split, dropout, the loss's draws) follows `config.seed`; the model's initial weights are the caller's to seed.

    History: train_loss, val_loss, lr, seconds (one entry per epoch run), best_epoch (from 1), best_val_loss,
    val_indices.
    """
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    splitter = generator if config.split_seed is None else torch.Generator().manual_seed(config.split_seed)
    train_idx, val_idx = split_indices(data["label"], config.val_fraction, splitter)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=config.lr_factor, patience=config.lr_patience
    )
    history = {"train_loss": [], "val_loss": [], "lr": [], "seconds": [], "best_epoch": 0, "best_val_loss": None}
    history["val_indices"] = val_idx
    best = _BestWeights(config.patience)
    epochs = tqdm(range(1, config.epochs + 1), desc="epochs", disable=not config.progress)
    for epoch in epochs:
        start = time.perf_counter()
        order = train_idx[torch.randperm(len(train_idx), generator=generator)]
        steps = tqdm(
            batches(data, order, config.batch_size, device),
            total=-(-len(order) // config.batch_size),
            desc=f"epoch {epoch}",
            leave=False,
            disable=not config.progress,
        )
        train_loss = _train_epoch(model, loss_fn, optimizer, steps, epoch)
        val_loss = train_loss
        if len(val_idx):
            val_loss = evaluate_loss(model, loss_fn, data, val_idx, config.batch_size, device, config.seed)
        scheduler.step(val_loss)
        values = (train_loss, val_loss, optimizer.param_groups[0]["lr"], time.perf_counter() - start)
        for key, value in zip(("train_loss", "val_loss", "lr", "seconds"), values, strict=True):
            history[key].append(value)
        epochs.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}")
        if best.stop_after(model, epoch, val_loss) and epoch >= config.min_epochs:
            break
    best.restore(model)
    history["best_epoch"], history["best_val_loss"] = best.epoch, best.loss
    return history


def _train_epoch(model: nn.Module, loss_fn: LossFn, optimizer: torch.optim.Optimizer, steps: tqdm, epoch: int) -> float:
    """One optimiser step per batch of `steps`, in training mode; the mean loss per record."""
    model.train()
    total, count = 0.0, 0
    for batch in steps:
        loss = loss_fn(model, batch, epoch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(batch["label"])
        count += len(batch["label"])
        steps.set_postfix(loss=f"{loss.item():.4f}")
    return total / max(1, count)


class _BestWeights:
    """Early stopping on the validation loss, and a copy of the weights of its best epoch so far."""

    def __init__(self, patience: int):
        self.patience = patience
        self.epoch, self.loss, self.state, self.stale = 0, None, None, 0

    def stop_after(self, model: nn.Module, epoch: int, val_loss: float) -> bool:
        """Note the loss of `epoch` (keeping the weights if it is the lowest); true once `patience` epochs in a row
        brought no lower one."""
        if not math.isnan(val_loss) and (self.loss is None or val_loss < self.loss):
            self.epoch, self.loss, self.stale = epoch, val_loss, 0
            self.state = {key: value.detach().clone() for key, value in model.state_dict().items()}
            return False
        self.stale += 1
        return self.stale >= self.patience

    def restore(self, model: nn.Module) -> None:
        """The best weights back into `model`, in eval mode."""
        if self.state is not None:
            model.load_state_dict(self.state)
        model.eval()
