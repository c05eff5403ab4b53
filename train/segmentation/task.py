"""Semantic segmentation as a task of the training engine (the built-in algorithm's contract).

Data: the four channels (``train`` + ``train_annotation``, ``validation`` +
``validation_annotation``) or Ground Truth manifests, in File mode, or streamed manifests in
Pipe mode (``train.segmentation.pipe``), whose schedule is planned from
``num_training_samples``. Model: FCN, PSP or DeepLabV3 with an auxiliary head
(``common.segmentation``). Loss: cross-entropy ignoring 255, plus 0.5 x the auxiliary head's.
Score: validation mIOU. The main head's ``CrossEntropyLoss`` is the module the Debugger hook
records (``CrossEntropyLoss_output_0``).
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Iterable
from typing import Any, ClassVar

import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from common.artifact import TASK_SEGMENTATION, InputSpec, Metadata
from common.preprocessing import IMAGENET_MEAN, IMAGENET_STD
from common.segmentation import backbone_depth, build_segmenter
from train import previous_model
from train.data.dataset import EpochSampler
from train.data.loading import Split as LoaderSplit
from train.data.stream import StreamSampler
from train.distributed.runtime import Dist
from train.errors import UserError
from train.precision import Precision
from train.pretrained import WEIGHTS_CHANNEL, load_imagenet_weights
from train.segmentation import hyperparameters, metrics
from train.segmentation.data import IGNORE_INDEX, Split
from train.segmentation.dataset import BadPair, SegmentationDataset, collate
from train.segmentation.hyperparameters import SegmentationHyperparameters
from train.segmentation.optim import build_optimizer, build_scheduler
from train.segmentation.pipe import SegmentationStream, load_channel
from train.segmentation.transforms import EvalTransform, TrainTransform
from train.task import DataContext, Finish, Meter, Task, TaskData

log = logging.getLogger(__name__)

AUX_WEIGHT = 0.5
# Settings that change what a checkpoint means; resuming across a change is refused.
FINGERPRINT_KEYS = ("algorithm", "backbone", "num_classes", "crop", "optimizer",
                    "mini_batch_size")


class SegmentationTask(Task):
    name: ClassVar[str] = TASK_SEGMENTATION
    score_name: ClassVar[str] = "mIOU"
    min_batch: ClassVar[int] = 2  # BatchNorm cannot train on a 1-image batch (a remainder)
    params: SegmentationHyperparameters

    def __init__(self, env: Any, params: SegmentationHyperparameters) -> None:
        super().__init__(env, params)
        self.num_classes = params.num_classes or 0
        # The main head's loss as a module, so the debugger hook records it.
        self._criterion = nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)
        self.declared_samples: int | None = None

    @staticmethod
    def parse(raw: dict[str, str]) -> SegmentationHyperparameters:
        return hyperparameters.parse(raw)

    def fingerprint(self) -> dict[str, Any]:
        return {k: getattr(self.params, k) for k in FINGERPRINT_KEYS}

    # Data -------------------------------------------------------------------------------
    def load_data(self, ctx: DataContext) -> TaskData:
        params = self.params

        def channel(name: str, required: bool) -> Split | SegmentationStream | None:
            return load_channel(self.env, name, self.num_classes, required=required,
                                wait_seconds=params.pipe_wait_seconds,
                                attribute_names=params.attribute_names, shard=ctx.shard(name))

        train = channel("train", True)
        assert train is not None
        validation = channel("validation", False)
        samples = self._training_samples(train)
        train_split = _split("train", train, TrainTransform(base_size=params.base_size,
                                                            crop=params.crop), ctx,
                             shuffle_buffer=params.shuffle_buffer_size, train=True)
        val_split = (None if validation is None else
                     _split("validation", validation, EvalTransform(crop=params.crop), ctx,
                            shuffle_buffer=0, train=False))
        return TaskData(train_split, val_split, None, train_samples=samples)

    def _training_samples(self, data: Split | SegmentationStream) -> int:
        """How many pairs an epoch trains on: counted in File mode, declared in Pipe mode."""
        params = self.params
        if isinstance(data, SegmentationStream):
            if params.num_training_samples is None:
                raise UserError(
                    "Pipe mode: set the hyperparameter num_training_samples (the number of "
                    "lines in the train manifest), as the built-in algorithm requires: the "
                    "stream is not read before training, and the learning-rate schedule is "
                    "planned in batches per epoch"
                )
            self.declared_samples = params.num_training_samples
            return params.num_training_samples
        if len(data.pairs) < 2:
            raise UserError("the train channel needs at least 2 annotated images")
        if params.num_training_samples not in (None, len(data.pairs)):
            log.warning("num_training_samples=%s but the train channel has %d images",
                        params.num_training_samples, len(data.pairs))
        return len(data.pairs)

    def end_epoch(self, epoch: int, samples: int, dist: Dist) -> None:
        declared = self.declared_samples
        if declared is None:  # File mode: counted up front
            return
        if samples == 0:
            raise UserError(f"Pipe mode: channel 'train' streamed no samples in epoch {epoch}; "
                            "check that its manifest has lines")
        # Several ranks stop together when the first runs out: up to a global batch less.
        slack = 0 if dist.world == 1 else self.params.mini_batch_size * (
            dist.world // dist.local_world)
        if not declared - slack <= samples <= declared:
            log.warning("Pipe mode: epoch %d streamed %d training pairs but "
                        "num_training_samples=%d; set it to the manifest's line count so that "
                        "the learning-rate schedule ends with the last epoch", epoch, samples,
                        declared)

    # Model ------------------------------------------------------------------------------
    def check_previous(self, previous: previous_model.PreviousModel) -> None:
        meta = previous.metadata
        previous_model.require_same(previous, TASK_SEGMENTATION, [
            ("backbone", meta.backbone, self.params.backbone),
            ("algorithm", meta.architecture, self.params.algorithm),
            ("num_classes", meta.num_classes, self.params.num_classes),
        ])

    def build_model(self, *, imagenet: bool) -> nn.Module:
        params = self.params
        weights = None
        if params.use_pretrained_model and imagenet:
            weights = load_imagenet_weights("resnet", backbone_depth(params.backbone),
                                            self.env.channel_dir(WEIGHTS_CHANNEL),
                                            allow_download=False)
        try:
            return build_segmenter(params.algorithm, params.backbone, self.num_classes, weights)
        except RuntimeError as exc:
            raise UserError(f"pretrained weights do not fit {params.backbone}: {exc}") from exc

    @property
    def criterion(self) -> nn.Module:
        return self._criterion

    def optimizer(self, parameters: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        return build_optimizer(self.params, parameters)

    def scheduler(self, optimizer: torch.optim.Optimizer, batches_per_epoch: int
                  ) -> tuple[torch.optim.lr_scheduler.LRScheduler, bool]:
        return build_scheduler(self.params, optimizer, batches_per_epoch), True

    @property
    def eval_batch_size(self) -> int:
        return self.params.validation_mini_batch_size

    # Steps ------------------------------------------------------------------------------
    def new_meter(self) -> metrics.LossMeter:
        return metrics.LossMeter()

    def _loss(self, outputs: dict[str, torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        loss = self._criterion(outputs["out"], target)
        if "aux" in outputs:  # functional, so the debugger's loss stays the main head's alone
            loss = loss + AUX_WEIGHT * F.cross_entropy(outputs["aux"], target,
                                                       ignore_index=IGNORE_INDEX)
        return loss

    def batch_size(self, batch: Any) -> int:
        return 0 if isinstance(batch, BadPair) else len(batch[0])

    def observe(self, batch: Any) -> None:
        if isinstance(batch, BadPair):  # a streamed pair failed its check in a loader worker
            batch.raise_error()

    def train_step(self, model: nn.Module, batch: Any, meter: Meter, precision: Precision
                   ) -> torch.Tensor:
        assert isinstance(meter, metrics.LossMeter)
        images, target = batch
        loss = self._loss(model(precision.images(images)),
                          target.to(precision.device, non_blocking=True))
        meter.add(loss.item(), images.shape[0])
        return loss

    def evaluate(self, model: nn.Module, batches: Iterable[Any], precision: Precision
                 ) -> metrics.ConfusionMatrix:
        """The confusion matrix; the loss is applied too, so that the debugger hook records
        the validation loss (its EVAL curve)."""
        cm = metrics.ConfusionMatrix(self.num_classes)
        for batch in batches:
            self.observe(batch)
            images, target = batch
            logits = model(precision.images(images))["out"]
            self._criterion(logits, target.to(precision.device))
            cm.update(target, logits.argmax(1))
        return cm

    def log_epoch(self, epoch: int, train: Meter, validation: Meter | None) -> dict[str, float]:
        assert isinstance(train, metrics.LossMeter)
        assert validation is None or isinstance(validation, metrics.ConfusionMatrix)
        return metrics.log_epoch(epoch, self.env.resources.current_host, train.loss, validation)

    # The end ----------------------------------------------------------------------------
    def final_metrics(self, finish: Finish) -> dict[str, float]:
        """The last epoch's training loss, the exported (best) epoch's validation metrics."""
        final = dict(finish.last_metrics)
        if finish.best_epoch is not None:
            final |= {k: v for k, v in finish.best_metrics.items()
                      if k.startswith("validation:")}
            final["best_epoch"] = float(finish.best_epoch)
        return final

    def metadata(self, metrics: dict[str, float]) -> Metadata:
        params = self.params
        return Metadata(
            task=TASK_SEGMENTATION,
            architecture=params.algorithm,
            num_layers=backbone_depth(params.backbone),
            num_classes=self.num_classes,
            class_names=[str(i) for i in range(self.num_classes)],
            input=InputSpec(3, params.crop, params.crop, params.crop, IMAGENET_MEAN,
                            IMAGENET_STD),
            hyperparameters=params.to_dict(),
            metrics=metrics,
            framework={"torch": torch.__version__, "torchvision": torchvision.__version__,
                       "python": platform.python_version()},
            backbone=params.backbone,
        )


def _split(name: str, data: Split | SegmentationStream,
           transform: TrainTransform | EvalTransform, ctx: DataContext, *, shuffle_buffer: int,
           train: bool) -> LoaderSplit:
    """The engine's view of a split: dataset, this rank's sampler, default collation."""
    if isinstance(data, SegmentationStream):  # sharded by the stream itself
        dataset = SegmentationDataset(None, data.table, transform, ctx.seed, data.num_classes)
        sampler: EpochSampler | StreamSampler = StreamSampler(
            data, shuffle_buffer=shuffle_buffer, seed=ctx.seed)
    else:
        dataset = SegmentationDataset(data.pairs, data.table, transform, ctx.seed)
        index, count = ctx.shard(name)
        sampler = EpochSampler(len(data.pairs), shuffle=train, seed=ctx.seed, rank=index,
                               num_replicas=count, pad=train)
    return LoaderSplit(name, dataset, sampler, collate_fn=collate)
