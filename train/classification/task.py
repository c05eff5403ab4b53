"""Image classification as a task of the training engine: the built-in algorithm's
hyperparameters and channels, the dog-breed workflow's folders, VGG16 and ResNet transfer
learning, and the built-in's metric lines."""

from __future__ import annotations

import logging
import platform
from collections.abc import Iterable
from typing import Any, ClassVar

import torch
import torchvision
from torch import nn

from common.artifact import TASK_CLASSIFICATION, InputSpec, Metadata
from common.models import build_classifier, freeze_backbone
from common.preprocessing import IMAGENET_MEAN, IMAGENET_STD
from train import hyperparameters, previous_model
from train.classification.metrics import RunningStats, log_epoch, log_test
from train.contract import TrainingEnv
from train.data.dataset import Batch
from train.data.loading import Data, load_data
from train.distributed.runtime import Dist
from train.errors import UserError
from train.hyperparameters import Hyperparameters
from train.metric_definitions import MULTI_LABEL_METRICS
from train.optim import build_optimizer, build_scheduler
from train.precision import Precision
from train.pretrained import WEIGHTS_CHANNEL, load_imagenet_weights
from train.task import DataContext, Finish, Meter, Task, TaskData

log = logging.getLogger(__name__)

# Hyperparameters that change what a checkpoint means; resuming across a change is refused.
FINGERPRINT_KEYS = ("architecture", "num_layers", "image_shape", "optimizer", "multi_label",
                    "finetune", "mini_batch_size")


class ClassificationTask(Task):
    name: ClassVar[str] = TASK_CLASSIFICATION
    score_name: ClassVar[str] = "accuracy"
    params: Hyperparameters

    def __init__(self, env: TrainingEnv, params: Hyperparameters) -> None:
        super().__init__(env, params)
        _, height, width = params.input_shape
        self.spec = InputSpec(3, height, width, params.resize or max(height, width),
                              IMAGENET_MEAN, IMAGENET_STD)
        self.data: Data | None = None
        self.bad_images: set[str] = set()
        self._criterion: nn.Module | None = None

    @staticmethod
    def parse(raw: dict[str, str]) -> Hyperparameters:
        return hyperparameters.parse(raw)

    @property
    def layers(self) -> int | None:
        return self.params.num_layers if self.params.architecture == "resnet" else None

    def fingerprint(self) -> dict[str, Any]:
        assert self.data is not None
        return ({k: getattr(self.params, k) for k in FINGERPRINT_KEYS}
                | {"classes": self.data.class_names})

    # Data -------------------------------------------------------------------------------
    def load_data(self, ctx: DataContext) -> TaskData:
        data = load_data(self.env, self.params, self.spec, ctx.seed, shard=ctx.shard,
                         gather=ctx.dist.all_gather)
        self._check_num_classes(data)
        self.data = data
        self._criterion = self._make_criterion(data)
        return TaskData(data.train, data.validation, data.test, train_samples=data.train.size)

    def _check_num_classes(self, data: Data) -> None:
        found = len(data.class_names)
        params = self.params
        if params.num_classes is not None and params.num_classes != found:
            raise UserError(
                f"hyperparameter num_classes={params.num_classes} but the training channel "
                f"{data.train.channel!r} has {found} class folders; set num_classes={found} or "
                "fix the data"
            )
        size = data.train.size
        if params.num_training_samples is not None and size is not None and (
            params.num_training_samples != size
        ):
            log.warning("num_training_samples=%d but the training channel has %d images",
                        params.num_training_samples, size)
        if found < 2:
            raise UserError(f"the training channel {data.train.channel!r} has {found} class; "
                            "classification needs at least 2")

    def _make_criterion(self, data: Data) -> nn.Module:
        """Softmax cross-entropy; for multi-label data sigmoid + binary cross-entropy,
        optionally weighted per class by (negatives / positives) of the training labels."""
        if not self.params.multi_label:
            return nn.CrossEntropyLoss()
        if not self.params.use_weighted_loss:
            return nn.BCEWithLogitsLoss()
        if data.label_counts is None:
            raise UserError(
                "use_weighted_loss=1 needs the label counts before training starts, which a "
                "Pipe-mode channel cannot give; use File mode for the train channel or set "
                "use_weighted_loss=0"
            )
        positives = torch.tensor(data.label_counts, dtype=torch.float32)
        total = float(data.labelled_images or 0)
        weights = torch.where(positives > 0, (total - positives) / positives.clamp(min=1),
                              torch.ones_like(positives))
        log.info("use_weighted_loss: positive-class weights %s",
                 ", ".join(f"{w:.2f}" for w in weights[:10].tolist()))
        return nn.BCEWithLogitsLoss(pos_weight=weights)

    # Model ------------------------------------------------------------------------------
    def check_previous(self, previous: previous_model.PreviousModel) -> None:
        assert self.data is not None
        meta, spec = previous.metadata, self.spec
        shape = f"{meta.input.channels},{meta.input.height},{meta.input.width}"
        previous_model.require_same(previous, TASK_CLASSIFICATION, [
            ("architecture", meta.architecture, self.params.architecture),
            ("num_layers", meta.num_layers, self.layers),
            ("image_shape", shape, f"{spec.channels},{spec.height},{spec.width}"),
            ("num_classes", meta.num_classes, len(self.data.class_names)),
        ])
        if meta.class_names != self.data.class_names:
            log.warning("incremental training: the previous model's classes %s differ from "
                        "this data's %s; class i keeps the previous model's class i weights",
                        meta.class_names[:10], self.data.class_names[:10])

    def build_model(self, *, imagenet: bool) -> nn.Module:
        assert self.data is not None
        params = self.params
        weights = None
        if params.use_pretrained_model and not imagenet:
            log.info("use_pretrained_model=1: the model channel's weights replace ImageNet's")
        elif params.use_pretrained_model:
            weights = load_imagenet_weights(params.architecture, self.layers,
                                            self.env.channel_dir(WEIGHTS_CHANNEL),
                                            params.download_pretrained)
        try:
            model = build_classifier(params.architecture, self.layers,
                                     len(self.data.class_names), weights)
        except RuntimeError as exc:  # state_dict of another architecture
            raise UserError(f"pretrained weights do not fit {params.architecture}: {exc}"
                            ) from exc
        if params.freeze_backbone:
            freeze_backbone(model, params.architecture)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        log.info("model %s%s: %d trainable parameters (%s)", params.architecture,
                 self.layers or "", trainable,
                 "head only" if params.freeze_backbone else "all layers")
        return model

    @property
    def criterion(self) -> nn.Module:
        assert self._criterion is not None, "load_data comes first"
        return self._criterion

    def optimizer(self, parameters: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        return build_optimizer(self.params, parameters)

    def scheduler(self, optimizer: torch.optim.Optimizer, batches_per_epoch: int
                  ) -> tuple[torch.optim.lr_scheduler.LRScheduler, bool]:
        return build_scheduler(self.params, optimizer), False

    # Steps ------------------------------------------------------------------------------
    def new_meter(self) -> RunningStats:
        return RunningStats(multi_label=self.params.multi_label)

    def batch_size(self, batch: Batch) -> int:
        return batch.size

    def samples_read(self, batch: Batch) -> int:
        return batch.size + len(batch.bad_names)  # skipped unreadable images too

    def observe(self, batch: Batch) -> None:
        self._count_bad(batch.bad_names)

    def _count_bad(self, names: Iterable[str]) -> None:
        self.bad_images.update(names)
        limit = self.params.max_bad_images
        if len(self.bad_images) > limit:
            shown = ", ".join(sorted(self.bad_images)[:5])
            raise UserError(
                f"{len(self.bad_images)} images could not be decoded (e.g. {shown}), more than "
                f"max_bad_images={limit}; fix or remove them, or raise max_bad_images"
            )

    def train_step(self, model: nn.Module, batch: Batch, meter: Meter, precision: Precision
                   ) -> torch.Tensor:
        assert isinstance(meter, RunningStats)
        targets = batch.targets.to(precision.device, non_blocking=True)
        images = batch.model_input(precision.device, channels_last=precision.channels_last)
        logits = model(images)
        loss = self.criterion(logits, targets)
        meter.update(loss.detach(), logits.detach().float(), targets, self.params.top_k)
        return loss

    def evaluate(self, model: nn.Module, batches: Iterable[Batch], precision: Precision
                 ) -> RunningStats:
        stats = self.new_meter()
        for batch in batches:
            self._count_bad(batch.bad_names)
            if not batch.size:
                continue
            targets = batch.targets.to(precision.device, non_blocking=True)
            images = batch.model_input(precision.device, channels_last=precision.channels_last)
            logits = model(images)
            stats.update(self.criterion(logits, targets), logits.float(), targets,
                         self.params.top_k)
        return stats

    def end_epoch(self, epoch: int, samples: int, dist: Dist) -> None:
        # Bad images are counted per rank while training; the limit is for the whole job.
        if dist.enabled:
            self._count_bad({name for names in dist.all_gather(sorted(self.bad_images))
                             for name in names})

    def log_epoch(self, epoch: int, train: Meter, validation: Meter | None) -> dict[str, float]:
        assert isinstance(train, RunningStats)
        values = log_epoch(epoch, "Train", train, self.params.top_k)
        if validation is not None:
            assert isinstance(validation, RunningStats)
            values |= log_epoch(epoch, "Validation", validation, self.params.top_k)
        return values

    # The end ----------------------------------------------------------------------------
    def final_metrics(self, finish: Finish) -> dict[str, float]:
        """The exported weights on the test channel (else validation): the test line."""
        assert self.data is not None
        split = self.data.test or self.data.validation
        result: dict[str, float] = {}
        if split is None:
            log.info("no validation or test channel: skipping the final evaluation")
        else:
            stats = finish.evaluate(split)
            assert isinstance(stats, RunningStats)
            log_test(stats)
            prefix = "test" if self.data.test is not None else "validation"
            result = {f"{prefix}:accuracy": stats.accuracy, f"{prefix}:loss": stats.loss}
            if self.params.multi_label:
                result |= {f"{prefix}:{name}": getattr(stats, name)
                           for name in MULTI_LABEL_METRICS}
            elif self.params.top_k:
                result[f"{prefix}:top_k_accuracy"] = stats.topk_accuracy
        if finish.best_epoch is not None:
            result["best_epoch"] = float(finish.best_epoch)
        return result

    def metadata(self, metrics: dict[str, float]) -> Metadata:
        assert self.data is not None
        params = self.params
        return Metadata(
            task=TASK_CLASSIFICATION,
            architecture=params.architecture,
            num_layers=self.layers,
            num_classes=len(self.data.class_names),
            class_names=self.data.class_names,
            input=self.spec,
            multi_label=params.multi_label,
            hyperparameters=params.to_dict(),
            metrics=metrics,
            framework={"torch": torch.__version__, "torchvision": torchvision.__version__,
                       "python": platform.python_version()},
        )

    def state_dict(self) -> dict[str, Any]:
        return {"bad_images": sorted(self.bad_images)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.bad_images = set(state.get("bad_images", ()))
