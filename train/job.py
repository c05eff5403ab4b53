"""A training job: hyperparameters and data in, checkpoints, metrics and the artifact out."""

from __future__ import annotations

import copy
import logging
import platform
from dataclasses import dataclass, field
from typing import Any

import torch
import torchvision
from torch import nn

from common import artifact
from common.artifact import TASK_CLASSIFICATION, InputSpec, Metadata
from common.models import build_classifier, freeze_backbone
from common.preprocessing import IMAGENET_MEAN, IMAGENET_STD
from train import checkpoint, hyperparameters, metrics, previous_model
from train.contract import MODEL_CHANNEL, TrainingEnv
from train.data.loading import Data, default_num_workers, load_data, make_loader
from train.debugger import Instruments
from train.engine import Precision, RunningStats, evaluate, train_one_epoch
from train.errors import TrainingInterrupted, UserError
from train.hyperparameters import Hyperparameters
from train.interrupt import StopRequest
from train.optim import EarlyStopping, build_optimizer, build_scheduler
from train.pretrained import WEIGHTS_CHANNEL, load_imagenet_weights
from train.seeding import choose_seed

log = logging.getLogger(__name__)

# Hyperparameters that change what a checkpoint means; resuming across a change is refused.
FINGERPRINT_KEYS = ("architecture", "num_layers", "image_shape", "optimizer", "multi_label",
                    "finetune", "mini_batch_size")


@dataclass
class Progress:
    epoch: int = 0  # the epoch in progress (0-based)
    batch_samples: int = 0  # training samples of this epoch already consumed
    stats: RunningStats = field(default_factory=RunningStats)
    best_accuracy: float | None = None
    best_epoch: int | None = None
    best_state: dict[str, Any] | None = None
    bad_images: set[str] = field(default_factory=set)


def run(env: TrainingEnv, stop: StopRequest) -> dict[str, float]:
    params = hyperparameters.parse(env.hyperparameters)
    log.info("hyperparameters: %s", {k: v for k, v in params.to_dict().items() if v is not None})
    _check_supported(env)
    device = _select_device()
    resume = checkpoint.load(env.checkpoint_dir)
    previous = _previous_model(env, resume)
    seed = choose_seed(params.seed, resume)
    torch.manual_seed(seed)

    _, height, width = params.input_shape
    spec = InputSpec(3, height, width, params.resize or max(height, width),
                     IMAGENET_MEAN, IMAGENET_STD)
    data = load_data(env, params, spec, seed)
    num_classes = _check_num_classes(params, data)
    if previous is not None:
        _check_previous(previous, params, spec, num_classes, data.class_names)

    model = _build_model(env, params, num_classes, previous).to(device)
    channels_last = device.type == "cuda"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(params, model.parameters())
    scheduler = build_scheduler(params, optimizer)
    stopper = EarlyStopping(min_epochs=params.early_stopping_min_epochs,
                            patience=params.early_stopping_patience,
                            tolerance=params.early_stopping_tolerance)
    precision = _precision(params, device)
    scaler = torch.amp.GradScaler(device.type) if precision.needs_scaler else None
    criterion = _criterion(params, data, device)
    fingerprint = {k: getattr(params, k) for k in FINGERPRINT_KEYS} | {"classes": data.class_names}
    progress = Progress(stats=RunningStats(multi_label=params.multi_label))
    if resume is not None:
        checkpoint.check_compatible(resume, fingerprint, env.checkpoint_dir)
    workers = (params.num_workers if params.num_workers is not None
               else default_num_workers(device.type == "cuda"))
    pin = device.type == "cuda"
    # The previous model's score (not for a stream: that would cost a pass of the FIFO).
    if previous is not None and data.validation is not None and not data.validation.streamed:
        start = evaluate(model=model, batches=make_loader(data.validation, params.mini_batch_size,
                                                          workers, pin),
                         criterion=criterion, precision=precision, top_k=params.top_k,
                         channels_last=channels_last, on_bad=lambda names: None,
                         multi_label=params.multi_label)
        log.info("incremental training: the previous model scores validation accuracy %.6f "
                 "(loss %.6f) before training", start.accuracy, start.loss)
    # Debugger hook and profiler when SageMaker configured them; no-ops otherwise.
    with Instruments.create(env, model, criterion, cuda=device.type == "cuda",
                            resuming=resume is not None) as instruments:
        if resume is not None:
            _restore(resume, model, optimizer, scheduler, stopper, scaler, progress)
            instruments.restore(resume.get("debugger"))
            log.info("resuming from checkpoint %s at epoch %d, sample %d", env.checkpoint_dir,
                     progress.epoch, progress.batch_samples)
            if data.train.streamed and progress.batch_samples:
                # A FIFO cannot be rewound or skipped into: the epoch starts over (documented).
                log.warning("Pipe mode: epoch %d restarts from its first sample",
                            progress.epoch)
                progress.batch_samples = 0
                progress.stats = RunningStats(multi_label=params.multi_label)

        def on_bad(names: list[str]) -> None:
            progress.bad_images.update(names)
            if len(progress.bad_images) > params.max_bad_images:
                shown = ", ".join(sorted(progress.bad_images)[:5])
                raise UserError(
                    f"{len(progress.bad_images)} images could not be decoded (e.g. {shown}), "
                    f"more than max_bad_images={params.max_bad_images}; fix or remove them, or "
                    "raise max_bad_images"
                )

        def save_checkpoint() -> None:
            state = _checkpoint_state(model, optimizer, scheduler, stopper, scaler, progress,
                                      seed, fingerprint, params)
            state["debugger"] = instruments.state()
            path = checkpoint.save(env.checkpoint_dir, state)
            log.info("checkpoint saved to %s (epoch %d, sample %d)", path, progress.epoch,
                     progress.batch_samples)

        def interrupted() -> TrainingInterrupted:
            save_checkpoint()
            return checkpoint.interruption(env.checkpoint_dir, progress.epoch)

        last_val: RunningStats | None = None
        frequency = params.checkpoint_frequency or 1
        while progress.epoch < params.epochs:
            epoch = progress.epoch
            data.train.dataset.set_epoch(epoch)
            data.train.sampler.set_epoch(epoch, start=progress.batch_samples)
            loader = make_loader(data.train, params.mini_batch_size, workers, pin)

            def count_samples(stats: RunningStats) -> None:
                progress.batch_samples += params.mini_batch_size
                if data.train.size is not None:
                    progress.batch_samples = min(progress.batch_samples, data.train.size)
                instruments.after_step()

            instruments.train_mode()
            finished = train_one_epoch(
                model=model, batches=loader, optimizer=optimizer, criterion=criterion,
                precision=precision, scaler=scaler, stats=progress.stats, epoch=epoch,
                top_k=params.top_k, channels_last=channels_last, on_bad=on_bad,
                should_stop=stop, after_batch=count_samples,
            )
            if not finished:
                raise interrupted()
            metrics.log_epoch(epoch, "Train", progress.stats, params.top_k)
            scheduler.step()
            stop_early = False
            if data.validation is not None:
                instruments.eval_mode()
                last_val = evaluate(model=model, batches=make_loader(
                    data.validation, params.mini_batch_size, workers, pin), criterion=criterion,
                    precision=precision, top_k=params.top_k, channels_last=channels_last,
                    on_bad=on_bad, multi_label=params.multi_label)
                metrics.log_epoch(epoch, "Validation", last_val, params.top_k)
                if progress.best_accuracy is None or last_val.accuracy > progress.best_accuracy:
                    progress.best_accuracy, progress.best_epoch = last_val.accuracy, epoch
                    progress.best_state = copy.deepcopy(_unwrap(model).state_dict())
                if params.early_stopping:
                    stop_early = stopper.update(epoch + 1, last_val.accuracy)
            progress.epoch, progress.batch_samples = epoch + 1, 0
            progress.stats = RunningStats(multi_label=params.multi_label)
            if stop_early:
                log.info("early stopping after epoch %d: validation accuracy has not improved "
                         "for %d epochs (best %.6f)", epoch, stopper.epochs_without_improvement,
                         stopper.best or 0.0)
                break
            if stop():
                raise interrupted()
            if progress.epoch % frequency == 0 or progress.epoch == params.epochs:
                save_checkpoint()

        if progress.best_state is not None:
            log.info("exporting the weights of epoch %d (best validation accuracy %.6f)",
                     progress.best_epoch, progress.best_accuracy)
            _unwrap(model).load_state_dict(progress.best_state)
        instruments.predict_mode()  # the exported weights' evaluation is not a validation epoch
        final = _final_metrics(data, model, params, criterion, precision, channels_last,
                               workers, pin, on_bad)
        _save_artifact(env, params, spec, data.class_names, model, final, progress)
        return final


def _check_supported(env: TrainingEnv) -> None:
    if len(env.resources.hosts) > 1:
        raise UserError(
            f"this version trains on one instance; resourceconfig.json lists "
            f"{len(env.resources.hosts)} hosts. Use instance_count=1 (several GPUs on one "
            "instance are used automatically)"
        )


def _criterion(params: Hyperparameters, data: Data, device: torch.device) -> nn.Module:
    """Softmax cross-entropy; for multi-label data sigmoid + binary cross-entropy, optionally
    weighted per class by (negatives / positives) of the training labels."""
    if not params.multi_label:
        return nn.CrossEntropyLoss()
    if not params.use_weighted_loss:
        return nn.BCEWithLogitsLoss()
    if data.label_counts is None:
        raise UserError(
            "use_weighted_loss=1 needs the label counts before training starts, which a "
            "Pipe-mode channel cannot give; use File mode for the train channel or set "
            "use_weighted_loss=0"
        )
    positives = torch.tensor(data.label_counts, dtype=torch.float32)
    total = float(data.train.size or 0)
    weights = torch.where(positives > 0, (total - positives) / positives.clamp(min=1),
                          torch.ones_like(positives))
    log.info("use_weighted_loss: positive-class weights %s",
             ", ".join(f"{w:.2f}" for w in weights[:10].tolist()))
    return nn.BCEWithLogitsLoss(pos_weight=weights.to(device))


def _select_device() -> torch.device:
    if torch.cuda.is_available():
        log.info("training on %d CUDA device(s): %s", torch.cuda.device_count(),
                 torch.cuda.get_device_name(0))
        return torch.device("cuda")
    log.info("training on CPU (%d threads)", torch.get_num_threads())
    return torch.device("cpu")


def _check_num_classes(params: Hyperparameters, data: Data) -> int:
    found = len(data.class_names)
    if params.num_classes is not None and params.num_classes != found:
        raise UserError(
            f"hyperparameter num_classes={params.num_classes} but the training channel "
            f"{data.train.channel!r} has {found} class folders; set num_classes={found} or fix "
            "the data"
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
    return found


def _previous_model(env: TrainingEnv, resume: dict[str, Any] | None
                    ) -> previous_model.PreviousModel | None:
    if resume is None:
        return previous_model.load(env)
    if MODEL_CHANNEL in env.available_channels():
        log.info("resuming from a checkpoint: the %r channel is not used", MODEL_CHANNEL)
    return None


def _check_previous(previous: previous_model.PreviousModel, params: Hyperparameters,
                    spec: InputSpec, num_classes: int, class_names: list[str]) -> None:
    meta = previous.metadata
    shape = f"{meta.input.channels},{meta.input.height},{meta.input.width}"
    previous_model.require_same(previous, TASK_CLASSIFICATION, [
        ("architecture", meta.architecture, params.architecture),
        ("num_layers", meta.num_layers,
         params.num_layers if params.architecture == "resnet" else None),
        ("image_shape", shape, f"{spec.channels},{spec.height},{spec.width}"),
        ("num_classes", meta.num_classes, num_classes),
    ])
    if meta.class_names != class_names:
        log.warning("incremental training: the previous model's classes %s differ from this "
                    "data's %s; class i keeps the previous model's class i weights",
                    meta.class_names[:10], class_names[:10])


def _build_model(env: TrainingEnv, params: Hyperparameters, num_classes: int,
                 previous: previous_model.PreviousModel | None = None) -> nn.Module:
    layers = params.num_layers if params.architecture == "resnet" else None
    imagenet = None
    if previous is not None and params.use_pretrained_model:
        log.info("use_pretrained_model=1: the %r channel's weights replace ImageNet's",
                 MODEL_CHANNEL)
    elif params.use_pretrained_model:
        imagenet = load_imagenet_weights(params.architecture, layers,
                                         env.channel_dir(WEIGHTS_CHANNEL),
                                         params.download_pretrained)
    try:
        model = build_classifier(params.architecture, layers, num_classes, imagenet)
    except RuntimeError as exc:  # state_dict of another architecture
        raise UserError(f"pretrained weights do not fit {params.architecture}: {exc}") from exc
    if previous is not None:
        previous_model.apply(previous, model)
    if params.freeze_backbone:
        freeze_backbone(model, params.architecture)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info("model %s%s: %d trainable parameters (%s)", params.architecture, layers or "",
             trainable, "head only" if params.freeze_backbone else "all layers")
    if torch.cuda.device_count() > 1:
        model = nn.DataParallel(model)
    return model


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.DataParallel) else model


def _precision(params: Hyperparameters, device: torch.device) -> Precision:
    if params.precision_dtype == "float32":
        return Precision(device, None)
    if device.type != "cuda":
        log.warning("precision_dtype=%s applies on CUDA only; training in float32 on CPU",
                    params.precision_dtype)
        return Precision(device, None)
    return Precision(device, getattr(torch, params.precision_dtype))


def _checkpoint_state(model, optimizer, scheduler, stopper, scaler, progress: Progress,
                      seed: int, fingerprint: dict[str, Any],
                      params: Hyperparameters) -> dict[str, Any]:
    return {
        "model": _unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "early_stopping": stopper.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "epoch": progress.epoch,
        "batch_samples": progress.batch_samples,
        "stats": progress.stats.to_dict(),
        "best": {"accuracy": progress.best_accuracy, "epoch": progress.best_epoch,
                 "state": progress.best_state},
        "bad_images": sorted(progress.bad_images),
        "rng": torch.get_rng_state(),
        "seed": seed,
        "fingerprint": fingerprint,
        "hyperparameters": params.to_dict(),
    }


def _restore(state, model, optimizer, scheduler, stopper, scaler, progress: Progress) -> None:
    _unwrap(model).load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    stopper.load_state_dict(state["early_stopping"])
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    progress.epoch = int(state["epoch"])
    progress.batch_samples = int(state["batch_samples"])
    progress.stats = RunningStats(**state["stats"])
    progress.best_accuracy = state["best"]["accuracy"]
    progress.best_epoch = state["best"]["epoch"]
    progress.best_state = state["best"]["state"]
    progress.bad_images = set(state["bad_images"])
    torch.set_rng_state(state["rng"])


def _final_metrics(data: Data, model, params, criterion, precision, channels_last, workers,
                   pin, on_bad) -> dict[str, float]:
    """Evaluate the exported weights on the test channel (else validation)."""
    split = data.test or data.validation
    if split is None:
        log.info("no validation or test channel: skipping the final evaluation")
        return {}
    stats = evaluate(model=model, batches=make_loader(split, params.mini_batch_size, workers,
                                                      pin),
                     criterion=criterion, precision=precision, top_k=params.top_k,
                     channels_last=channels_last, on_bad=on_bad,
                     multi_label=params.multi_label)
    metrics.log_test(stats)
    prefix = "test" if data.test is not None else "validation"
    result = {f"{prefix}:accuracy": stats.accuracy, f"{prefix}:loss": stats.loss}
    if params.multi_label:
        result |= {f"{prefix}:{name}": getattr(stats, name)
                   for name in metrics.MULTI_LABEL_METRICS}
    elif params.top_k:
        result[f"{prefix}:top_k_accuracy"] = stats.topk_accuracy
    return result


def _save_artifact(env: TrainingEnv, params: Hyperparameters, spec: InputSpec,
                   class_names: list[str], model: nn.Module, final: dict[str, float],
                   progress: Progress) -> None:
    final_metrics = dict(final)
    if progress.best_epoch is not None:
        final_metrics["best_epoch"] = float(progress.best_epoch)
    meta = Metadata(
        task=TASK_CLASSIFICATION,
        architecture=params.architecture,
        num_layers=params.num_layers if params.architecture == "resnet" else None,
        num_classes=len(class_names),
        class_names=class_names,
        input=spec,
        multi_label=params.multi_label,
        hyperparameters=params.to_dict(),
        metrics=final_metrics,
        framework={"torch": torch.__version__, "torchvision": torchvision.__version__,
                   "python": platform.python_version()},
    )
    artifact.save(env.model_dir, _unwrap(model).state_dict(), meta)
    log.info("model saved to %s", env.model_dir)
