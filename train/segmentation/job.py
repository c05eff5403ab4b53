"""A semantic-segmentation training job: ``run(env, stop)``, called by ``train.job``.

Flat steps: parse hyperparameters, load and check the data, build the network, train one epoch
at a time (``train_one_epoch``), evaluate mIOU (``evaluate``), keep the best epoch's weights,
stop early on mIOU, and write the artifact (``common.artifact``) with task
``semantic_segmentation``.

Checkpoints (``train.checkpoint``, ``/opt/ml/checkpoints/last.pt``) are written after every
epoch and on SIGTERM after the current batch: model, optimizer, scheduler, early stopping, the
best epoch's weights, the position within the epoch and the RNG state. A job that finds one
resumes at that batch; with a fixed ``seed`` it ends with the weights of an uninterrupted run.

Pipe-mode channels are streams (``train.segmentation.pipe``) read one pass per epoch through
``train.data.stream.StreamSampler``; the schedule is planned from ``num_training_samples``, and
a resumed epoch restarts from the stream's first pair.

SageMaker Debugger and Profiler (``train.debugger``) run when their configs exist: the main
head's ``CrossEntropyLoss`` is the registered loss (``CrossEntropyLoss_output_0``), TRAIN mode
while training and EVAL for each validation pass.
"""

from __future__ import annotations

import copy
import logging
import platform
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from common import artifact
from common.artifact import TASK_SEGMENTATION, InputSpec, Metadata
from common.preprocessing import IMAGENET_MEAN, IMAGENET_STD
from common.segmentation import backbone_depth, build_segmenter
from train import checkpoint, previous_model
from train.contract import TrainingEnv
from train.data.dataset import EpochSampler
from train.data.loading import default_num_workers
from train.data.stream import StreamSampler
from train.debugger import Instruments
from train.errors import TrainingInterrupted, UserError
from train.optim import EarlyStopping
from train.pretrained import WEIGHTS_CHANNEL, load_imagenet_weights
from train.seeding import choose_seed
from train.segmentation import hyperparameters, metrics
from train.segmentation.data import IGNORE_INDEX, Split
from train.segmentation.dataset import SegmentationDataset
from train.segmentation.hyperparameters import SegmentationHyperparameters
from train.segmentation.optim import build_optimizer, build_scheduler
from train.segmentation.pipe import SegmentationStream, load_channel
from train.segmentation.transforms import EvalTransform, TrainTransform

log = logging.getLogger(__name__)

AUX_WEIGHT = 0.5
# Settings that change what a checkpoint means; resuming across a change is refused.
FINGERPRINT_KEYS = ("algorithm", "backbone", "num_classes", "crop", "optimizer",
                    "mini_batch_size")


@dataclass
class Progress:
    """Where training stands; all of it goes into the checkpoint."""

    epoch: int = 0  # the epoch in progress (0-based)
    batch_samples: int = 0  # training samples of this epoch already consumed
    loss_sum: float = 0.0  # this epoch's training loss so far, summed over samples
    loss_count: int = 0
    best_miou: float | None = None
    best_epoch: int | None = None
    best_state: dict[str, Any] | None = None
    last_metrics: dict[str, float] = field(default_factory=dict)  # of the last finished epoch

    def next_epoch(self) -> None:
        self.epoch, self.batch_samples, self.loss_sum, self.loss_count = self.epoch + 1, 0, 0.0, 0

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def run(env: TrainingEnv, stop: Callable[[], bool]) -> dict[str, float]:
    params = hyperparameters.parse(env.hyperparameters)
    log.info("segmentation hyperparameters: %s",
             {k: v for k, v in params.to_dict().items() if v is not None})
    if len(env.resources.hosts) > 1:
        raise UserError("this version trains on one instance; use instance_count=1")
    resume = checkpoint.load(env.checkpoint_dir)
    previous = None if resume is not None else previous_model.load(env)
    if previous is not None:
        meta = previous.metadata
        previous_model.require_same(previous, TASK_SEGMENTATION, [
            ("backbone", meta.backbone, params.backbone),
            ("algorithm", meta.architecture, params.algorithm),
            ("num_classes", meta.num_classes, params.num_classes),
        ])
    seed = choose_seed(params.seed, resume)
    torch.manual_seed(seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    num_classes = params.num_classes or 0
    train_data = load_channel(env, "train", num_classes, required=True,
                              wait_seconds=params.pipe_wait_seconds,
                              attribute_names=params.attribute_names)
    val_data = load_channel(env, "validation", num_classes, required=False,
                            wait_seconds=params.pipe_wait_seconds,
                            attribute_names=params.attribute_names)
    train_count = _training_samples(train_data, params)
    workers = (params.num_workers if params.num_workers is not None
               else default_num_workers(device.type == "cuda"))
    train_set = _dataset(train_data, TrainTransform(base_size=params.base_size,
                                                    crop=params.crop), seed)
    sampler = _sampler(train_data, params.shuffle_buffer_size, seed, shuffle=True)
    val_set = val_sampler = None
    if val_data is not None:
        val_set = _dataset(val_data, EvalTransform(crop=params.crop), seed)
        # One sampler for the whole job: a stream's sampler counts the FIFOs it has read.
        val_sampler = _sampler(val_data, 0, seed, shuffle=False)

    model = _build_model(env, params, previous).to(device)
    optimizer = build_optimizer(params, model.parameters())
    batches_per_epoch = -(-train_count // params.mini_batch_size)
    scheduler = build_scheduler(params, optimizer, batches_per_epoch)
    stopper = EarlyStopping(min_epochs=params.early_stopping_min_epochs,
                            patience=params.early_stopping_patience,
                            tolerance=params.early_stopping_tolerance)
    fingerprint = {k: getattr(params, k) for k in FINGERPRINT_KEYS}
    progress = Progress()
    if resume is not None:
        checkpoint.check_compatible(resume, fingerprint, env.checkpoint_dir)
        _restore(resume, model, optimizer, scheduler, stopper, progress)
        log.info("resuming from checkpoint %s at epoch %d, sample %d", env.checkpoint_dir,
                 progress.epoch, progress.batch_samples)
        if isinstance(train_data, SegmentationStream) and progress.batch_samples:
            # A FIFO cannot be rewound or skipped into: the epoch starts over (documented).
            log.warning("Pipe mode: epoch %d restarts from its first sample", progress.epoch)
            progress.batch_samples, progress.loss_sum, progress.loss_count = 0, 0.0, 0

    # The main head's loss as a module, so the debugger hook records CrossEntropyLoss_output_0.
    criterion = nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)
    # The previous model's score (not for a stream: that would cost a pass of the FIFO).
    if previous is not None and val_set is not None and isinstance(val_data, Split):
        start = evaluate(model, _loader(val_set, params.validation_mini_batch_size, workers,
                                        val_sampler), num_classes, device)
        log.info("incremental training: the previous model scores validation mIOU %.6f "
                 "before training", start.mean_iou)
    # Debugger hook and profiler when SageMaker configured them; no-ops otherwise.
    instruments = Instruments.create(env, model, criterion, cuda=device.type == "cuda",
                                       resuming=resume is not None)

    def save_checkpoint() -> None:
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict(), "early_stopping": stopper.state_dict(),
                 "progress": progress.to_dict(), "rng": torch.get_rng_state(), "seed": seed,
                 "fingerprint": fingerprint, "hyperparameters": params.to_dict(),
                 "debugger": instruments.state()}
        path = checkpoint.save(env.checkpoint_dir, state)
        log.info("checkpoint saved to %s (epoch %d, sample %d)", path, progress.epoch,
                 progress.batch_samples)

    def interrupted() -> TrainingInterrupted:
        save_checkpoint()
        return checkpoint.interruption(env.checkpoint_dir, progress.epoch)

    with instruments:
        if resume is not None:
            instruments.restore(resume.get("debugger"))
        while progress.epoch < params.epochs:
            epoch = progress.epoch
            train_set.set_epoch(epoch)
            sampler.set_epoch(epoch, start=progress.batch_samples)
            loader = _loader(train_set, params.mini_batch_size, workers, sampler)
            instruments.train_mode()
            if not train_one_epoch(model, loader, criterion, optimizer, scheduler, device,
                                   stop, progress, instruments.after_step):
                raise interrupted()
            _check_streamed_count(train_data, progress.batch_samples, train_count, epoch)
            loss = progress.loss_sum / max(progress.loss_count, 1)
            cm = None
            if val_set is not None:
                instruments.eval_mode()
                cm = evaluate(model, _loader(val_set, params.validation_mini_batch_size,
                                             workers, val_sampler),
                              num_classes, device, criterion)
            metrics.log_epoch(epoch, env.resources.current_host, loss, cm)
            progress.last_metrics = {"train:loss": loss}
            stop_early = False
            if cm is not None:
                progress.last_metrics |= {"validation:mIOU": cm.mean_iou,
                                          "validation:pixel_accuracy": cm.pixel_accuracy}
                if progress.best_miou is None or cm.mean_iou > progress.best_miou:
                    progress.best_miou, progress.best_epoch = cm.mean_iou, epoch
                    progress.best_state = copy.deepcopy(model.state_dict())
                stop_early = params.early_stopping and stopper.update(epoch + 1, cm.mean_iou)
            progress.next_epoch()
            if stop_early:
                log.info("early stopping after epoch %d: mIOU has not improved for %d epochs",
                         epoch, stopper.epochs_without_improvement)
                break
            if stop():
                raise interrupted()
            save_checkpoint()

    final = dict(progress.last_metrics)
    if progress.best_state is not None:
        log.info("exporting the weights of epoch %d (best validation mIOU %.6f)",
                 progress.best_epoch, progress.best_miou)
        model.load_state_dict(progress.best_state)
        final |= {"validation:mIOU": progress.best_miou,
                  "best_epoch": float(progress.best_epoch or 0)}
    _save(env, params, model, final)
    return final


def _training_samples(data: Split | SegmentationStream | None,
                      params: SegmentationHyperparameters) -> int:
    """How many pairs an epoch trains on: counted in File mode, declared in Pipe mode."""
    if isinstance(data, SegmentationStream):
        if params.num_training_samples is None:
            raise UserError(
                "Pipe mode: set the hyperparameter num_training_samples (the number of lines "
                "in the train manifest), as the built-in algorithm requires: the stream is "
                "not read before training, and the learning-rate schedule is planned in "
                "batches per epoch"
            )
        return params.num_training_samples
    if data is None or len(data.pairs) < 2:
        raise UserError("the train channel needs at least 2 annotated images")
    if params.num_training_samples not in (None, len(data.pairs)):
        log.warning("num_training_samples=%s but the train channel has %d images",
                    params.num_training_samples, len(data.pairs))
    return len(data.pairs)


def _check_streamed_count(data: Split | SegmentationStream, seen: int, declared: int,
                          epoch: int) -> None:
    if not isinstance(data, SegmentationStream):
        return
    if seen == 0:
        raise UserError(f"Pipe mode: channel 'train' streamed no samples in epoch {epoch}; "
                        "check that its manifest has lines")
    if seen != declared:
        log.warning("Pipe mode: epoch %d streamed %d training pairs but num_training_samples="
                    "%d; set it to the manifest's line count so that the learning-rate "
                    "schedule ends with the last epoch", epoch, seen, declared)


def _dataset(data: Split | SegmentationStream, transform: TrainTransform | EvalTransform,
             seed: int) -> SegmentationDataset:
    pairs = None if isinstance(data, SegmentationStream) else data.pairs
    return SegmentationDataset(pairs, data.table, transform, seed)


def _sampler(data: Split | SegmentationStream, shuffle_buffer: int, seed: int, *,
             shuffle: bool) -> EpochSampler | StreamSampler | None:
    if isinstance(data, SegmentationStream):
        return StreamSampler(data, shuffle_buffer=shuffle_buffer, seed=seed)
    return EpochSampler(len(data.pairs), shuffle=True, seed=seed) if shuffle else None


def _restore(state: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer,
             scheduler: torch.optim.lr_scheduler.LRScheduler, stopper: EarlyStopping,
             progress: Progress) -> None:
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    stopper.load_state_dict(state["early_stopping"])
    for name, value in state["progress"].items():
        setattr(progress, name, value)
    torch.set_rng_state(state["rng"])


def _ignore_sigterm(_worker_id: int) -> None:
    # SIGTERM to the process group must reach the trainer, which checkpoints and stops the
    # workers itself; a worker dying first would turn a clean stop into a crash.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _loader(dataset: SegmentationDataset, batch_size: int, workers: int,
            sampler: EpochSampler | StreamSampler | None = None
            ) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
        worker_init_fn=_ignore_sigterm,
        # Its own generator: creating an iterator must not consume the global RNG, or a
        # resumed job's dropout would differ from an uninterrupted one.
        generator=torch.Generator().manual_seed(0))


def _build_model(env: TrainingEnv, params: SegmentationHyperparameters,
                 previous: previous_model.PreviousModel | None = None) -> nn.Module:
    imagenet = None
    if params.use_pretrained_model and previous is None:
        imagenet = load_imagenet_weights("resnet", backbone_depth(params.backbone),
                                         env.channel_dir(WEIGHTS_CHANNEL), allow_download=False)
    try:
        model = build_segmenter(params.algorithm, params.backbone, params.num_classes or 0,
                                imagenet)
    except RuntimeError as exc:
        raise UserError(f"pretrained weights do not fit {params.backbone}: {exc}") from exc
    if previous is not None:
        previous_model.apply(previous, model)
    return model


def _loss(criterion: nn.Module, outputs: dict[str, torch.Tensor], target: torch.Tensor
          ) -> torch.Tensor:
    loss = criterion(outputs["out"], target)
    if "aux" in outputs:  # functional, so the debugger's loss stays the main head's alone
        loss = loss + AUX_WEIGHT * F.cross_entropy(outputs["aux"], target,
                                                   ignore_index=IGNORE_INDEX)
    return loss


def train_one_epoch(model: nn.Module, batches: Iterable, criterion: nn.Module,
                    optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler, device: torch.device,
                    stop: Callable[[], bool], progress: Progress,
                    after_step: Callable[[], None] = lambda: None) -> bool:
    """Train over ``batches``, counting into ``progress``; False when ``stop()`` asked to end
    after a batch, before the epoch finished. ``after_step`` runs after every batch (the
    profiler's step counter)."""
    model.train()
    for images, target in batches:
        size = images.shape[0]
        if size > 1:  # BatchNorm cannot train on a 1-image batch (a remainder)
            loss = _loss(criterion, model(images.to(device)), target.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            progress.loss_sum += loss.item() * size
            progress.loss_count += size
        progress.batch_samples += size
        after_step()
        if stop():
            return False
    return True


def evaluate(model: nn.Module, batches: Iterable, num_classes: int, device: torch.device,
             criterion: nn.Module | None = None) -> metrics.ConfusionMatrix:
    """The confusion matrix over ``batches``; ``criterion``, when given, is applied too so
    that the debugger hook records the validation loss (its EVAL curve)."""
    model.eval()
    cm = metrics.ConfusionMatrix(num_classes)
    with torch.inference_mode():
        for images, target in batches:
            logits = model(images.to(device))["out"]
            if criterion is not None:
                criterion(logits, target.to(device))
            cm.update(target, logits.argmax(1))
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
