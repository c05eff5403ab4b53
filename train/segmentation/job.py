"""A semantic-segmentation training job: ``run(env, stop)``, called by ``train.job``.

Flat steps: parse hyperparameters, load and check the data, build the network, train one epoch
at a time (``train_one_epoch``), evaluate mIOU (``evaluate``), keep the best epoch's weights,
stop early on mIOU, and write the artifact (``common.artifact``) with task
``semantic_segmentation``.
"""

from __future__ import annotations

import copy
import logging
import platform
from collections.abc import Callable, Iterable

import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from common import artifact
from common.artifact import TASK_SEGMENTATION, InputSpec, Metadata
from common.preprocessing import IMAGENET_MEAN, IMAGENET_STD
from common.segmentation import backbone_depth, build_segmenter
from train.contract import TrainingEnv
from train.data.loading import default_num_workers
from train.errors import TrainingInterrupted, UserError
from train.optim import EarlyStopping
from train.pretrained import WEIGHTS_CHANNEL, load_imagenet_weights
from train.segmentation import hyperparameters, metrics
from train.segmentation.data import IGNORE_INDEX, load_split
from train.segmentation.dataset import SegmentationDataset
from train.segmentation.hyperparameters import SegmentationHyperparameters
from train.segmentation.optim import build_optimizer, build_scheduler
from train.segmentation.transforms import EvalTransform, TrainTransform

log = logging.getLogger(__name__)

AUX_WEIGHT = 0.5


def run(env: TrainingEnv, stop: Callable[[], bool]) -> dict[str, float]:
    params = hyperparameters.parse(env.hyperparameters)
    log.info("segmentation hyperparameters: %s",
             {k: v for k, v in params.to_dict().items() if v is not None})
    if len(env.resources.hosts) > 1:
        raise UserError("this version trains on one instance; use instance_count=1")
    seed = params.seed if params.seed is not None else int(torch.seed() % 2**31)
    torch.manual_seed(seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    num_classes = params.num_classes or 0
    train_split = load_split(env, "train", num_classes, required=True)
    val_split = load_split(env, "validation", num_classes, required=False)
    if train_split is None or len(train_split.pairs) < 2:
        raise UserError("the train channel needs at least 2 annotated images")
    if params.num_training_samples not in (None, len(train_split.pairs)):
        log.warning("num_training_samples=%s but the train channel has %d images",
                    params.num_training_samples, len(train_split.pairs))
    workers = (params.num_workers if params.num_workers is not None
               else default_num_workers(device.type == "cuda"))
    generator = torch.Generator().manual_seed(seed)
    train_loader = torch.utils.data.DataLoader(
        SegmentationDataset(train_split, TrainTransform(base_size=params.base_size,
                                                        crop=params.crop)),
        batch_size=params.mini_batch_size, shuffle=True, drop_last=False,
        num_workers=workers, generator=generator)
    val_loader = None if val_split is None else torch.utils.data.DataLoader(
        SegmentationDataset(val_split, EvalTransform(crop=params.crop)),
        batch_size=params.validation_mini_batch_size, num_workers=workers)

    model = _build_model(env, params).to(device)
    optimizer = build_optimizer(params, model.parameters())
    scheduler = build_scheduler(params, optimizer, len(train_loader))
    stopper = EarlyStopping(min_epochs=params.early_stopping_min_epochs,
                            patience=params.early_stopping_patience,
                            tolerance=params.early_stopping_tolerance)
    best: tuple[float, int, dict] | None = None
    final: dict[str, float] = {}
    for epoch in range(params.epochs):
        loss = train_one_epoch(model, train_loader, optimizer, scheduler, device, stop)
        if loss is None:
            raise TrainingInterrupted(f"training stopped by SIGTERM in epoch {epoch}; "
                                      "segmentation jobs do not checkpoint yet, run it again")
        cm = None if val_loader is None else evaluate(model, val_loader, num_classes, device)
        metrics.log_epoch(epoch, env.resources.current_host, loss, cm)
        final = {"train:loss": loss}
        if cm is None:
            continue
        final |= {"validation:mIOU": cm.mean_iou, "validation:pixel_accuracy": cm.pixel_accuracy}
        if best is None or cm.mean_iou > best[0]:
            best = (cm.mean_iou, epoch, copy.deepcopy(model.state_dict()))
        if params.early_stopping and stopper.update(epoch + 1, cm.mean_iou):
            log.info("early stopping after epoch %d: mIOU has not improved for %d epochs",
                     epoch, stopper.epochs_without_improvement)
            break
    if best is not None:
        log.info("exporting the weights of epoch %d (best validation mIOU %.6f)", best[1],
                 best[0])
        model.load_state_dict(best[2])
        final |= {"validation:mIOU": best[0], "best_epoch": float(best[1])}
    _save(env, params, model, final)
    return final


def _build_model(env: TrainingEnv, params: SegmentationHyperparameters) -> nn.Module:
    imagenet = None
    if params.use_pretrained_model:
        imagenet = load_imagenet_weights("resnet", backbone_depth(params.backbone),
                                         env.channel_dir(WEIGHTS_CHANNEL), allow_download=False)
    try:
        return build_segmenter(params.algorithm, params.backbone, params.num_classes or 0,
                               imagenet)
    except RuntimeError as exc:
        raise UserError(f"pretrained weights do not fit {params.backbone}: {exc}") from exc


def _loss(outputs: dict[str, torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    loss = F.cross_entropy(outputs["out"], target, ignore_index=IGNORE_INDEX)
    if "aux" in outputs:
        loss = loss + AUX_WEIGHT * F.cross_entropy(outputs["aux"], target,
                                                   ignore_index=IGNORE_INDEX)
    return loss


def train_one_epoch(model: nn.Module, batches: Iterable, optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler, device: torch.device,
                    stop: Callable[[], bool]) -> float | None:
    """Mean training loss, or None when ``stop()`` asked to end before the epoch finished."""
    model.train()
    total, count = 0.0, 0
    for images, target in batches:
        if stop():
            return None
        if images.shape[0] == 1:  # BatchNorm cannot train on a 1-image batch (a remainder)
            continue
        loss = _loss(model(images.to(device)), target.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += loss.item() * images.shape[0]
        count += images.shape[0]
    return total / max(count, 1)


def evaluate(model: nn.Module, batches: Iterable, num_classes: int, device: torch.device
             ) -> metrics.ConfusionMatrix:
    model.eval()
    cm = metrics.ConfusionMatrix(num_classes)
    with torch.inference_mode():
        for images, target in batches:
            prediction = model(images.to(device))["out"].argmax(1)
            cm.update(target, prediction)
    return cm


def _save(env: TrainingEnv, params: SegmentationHyperparameters, model: nn.Module,
          final: dict[str, float]) -> None:
    num_classes = params.num_classes or 0
    meta = Metadata(
        task=TASK_SEGMENTATION,
        architecture=params.algorithm,
        num_layers=backbone_depth(params.backbone),
        num_classes=num_classes,
        class_names=[str(i) for i in range(num_classes)],
        input=InputSpec(3, params.crop, params.crop, params.crop, IMAGENET_MEAN, IMAGENET_STD),
        hyperparameters=params.to_dict(),
        metrics=final,
        framework={"torch": torch.__version__, "torchvision": torchvision.__version__,
                   "python": platform.python_version()},
        backbone=params.backbone,
    )
    artifact.save(env.model_dir, model.state_dict(), meta)
    log.info("model saved to %s", env.model_dir)
