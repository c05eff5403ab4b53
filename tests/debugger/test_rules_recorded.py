"""Runs recorded by the real smdebug hook that should, and should not, trigger each rule.

Each run trains a small ReLU network on scikit-learn's digits in-process, with the hook
created the way the training job creates it; the evidence is read back with smdebug's trial
API and the rules are evaluated with their SageMaker defaults.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.debugger.conftest import mlp, record_run
from train.debugger import rules
from train.debugger.rules import INSUFFICIENT_DATA, ISSUES_FOUND, NO_ISSUES_FOUND


def _verdicts(evidence) -> dict[str, rules.Verdict]:
    return {v.rule: v for v in rules.evaluate_all(evidence)}


@pytest.fixture(scope="module")
def splits(digits_tensors):
    x, y = digits_tensors
    return (x[:1200], y[:1200]), (x[1200:], y[1200:])


@pytest.fixture(scope="module")
def healthy(tmp_path_factory, splits):
    """Full-batch gradient descent from a variance-preserving init: the loss falls steadily
    and validation follows training."""
    (x, y), (vx, vy) = splits
    return record_run(tmp_path_factory.mktemp("healthy"), mlp("kaiming"), lambda _: (x, y),
                      [(vx, vy)], steps=40, eval_every=10, lr=0.02)


@pytest.fixture(scope="module")
def constant(tmp_path_factory, splits):
    """Learning rate 0 on one fixed batch: the loss never moves."""
    (x, y), (vx, vy) = splits
    return record_run(tmp_path_factory.mktemp("constant"), mlp("kaiming"),
                      lambda _: (x[:64], y[:64]), [(vx, vy)], steps=40, eval_every=10, lr=0.0)


@pytest.fixture(scope="module")
def overfitting(tmp_path_factory, splits):
    """Memorising 32 images while validating on labels that carry no signal: the training
    loss falls and the validation loss rises as the network grows confident."""
    (x, y), (vx, vy) = splits
    shuffled = vy[torch.randperm(len(vy), generator=torch.Generator().manual_seed(0))]
    return record_run(tmp_path_factory.mktemp("overfit"), mlp("kaiming"),
                      lambda _: (x[:32], y[:32]), [(vx, shuffled)], steps=60, eval_every=5,
                      lr=0.1)


@pytest.fixture(scope="module")
def zero_init(tmp_path_factory, splits):
    (x, y), (vx, vy) = splits
    return record_run(tmp_path_factory.mktemp("zeros"), mlp("zeros"), lambda _: (x, y),
                      [(vx, vy)], steps=20, eval_every=10, lr=0.05)


def test_the_evidence_holds_both_curves_and_early_statistics(healthy) -> None:
    assert healthy.loss_name == "CrossEntropyLoss_output_0"
    assert [p.step for p in healthy.train_loss][:3] == [0, 1, 2]
    assert len(healthy.train_loss) == 40
    assert len(healthy.validation_passes()) == 4  # one EVAL step after every 10 TRAIN steps
    assert healthy.train_loss[-1].value < healthy.train_loss[0].value
    assert set(healthy.activation_variances[0]) == {"0.relu_input_0", "1.relu_input_0",
                                                    "2.relu_input_0"}
    assert 0 in healthy.gradient_percentiles


def test_a_healthy_run_triggers_no_rule(healthy) -> None:
    verdicts = _verdicts(healthy)
    for name in ("LossNotDecreasing", "Overfit", "Overtraining", "PoorWeightInitialization"):
        assert verdicts[name].status == NO_ISSUES_FOUND, verdicts[name].message


def test_a_constant_loss_triggers_loss_not_decreasing(constant) -> None:
    verdict = _verdicts(constant)["LossNotDecreasing"]
    assert verdict.status == ISSUES_FOUND
    # Global steps count the validation passes too: training steps 0-9, EVAL 10, then 11-20...
    # The first check compares step 11, the first at least num_steps=10 after step 0.
    assert verdict.fired_at == [11, 22, 33]
    assert "at 3 of 3 checks; first step 0->11: fell only 0.00%" in verdict.message


def test_a_constant_loss_triggers_overtraining(constant) -> None:
    verdict = _verdicts(constant)["Overtraining"]
    assert verdict.status == ISSUES_FOUND
    assert verdict.first == 5  # 5 saved training steps (patience_train) without improvement


def test_training_falling_while_validation_rises_triggers_overfit(overfitting) -> None:
    train = [p.value for p in overfitting.train_loss]
    passes = [sum(p.value for p in group) / len(group)
              for group in overfitting.validation_passes()]
    assert train[-1] < 0.5 * train[0]  # the run really is what the rule is for
    assert passes[-1] > passes[0]
    verdicts = _verdicts(overfitting)
    assert verdicts["Overfit"].status == ISSUES_FOUND
    assert verdicts["Overfit"].first is not None and verdicts["Overfit"].first > 0
    assert verdicts["LossNotDecreasing"].status == NO_ISSUES_FOUND  # training loss does fall


def test_zero_weights_trigger_poor_weight_initialization(zero_init) -> None:
    verdict = _verdicts(zero_init)["PoorWeightInitialization"]
    assert verdict.status == ISSUES_FOUND
    assert verdict.first == 0
    assert "variance ratio inf" in verdict.message or "gradients spread" in verdict.message


def test_poor_weight_initialization_needs_early_statistics(tmp_path, splits) -> None:
    (x, y), (vx, vy) = splits
    only_losses = {"LocalPath": "/opt/ml/output/tensors", "HookParameters": {"save_interval": "1"},
                   "CollectionConfigurations": [{"CollectionName": "losses"}]}
    evidence = record_run(tmp_path, mlp("kaiming"), lambda _: (x, y), [(vx, vy)], steps=12,
                          eval_every=6, lr=0.05, config=only_losses)
    verdict = _verdicts(evidence)["PoorWeightInitialization"]
    assert verdict.status == INSUFFICIENT_DATA
    assert "relu_input" in verdict.message


def test_rule_parameters_override_the_defaults(constant) -> None:
    # With a window longer than the run there is nothing to check.
    verdicts = {v.rule: v for v in rules.evaluate_all(
        constant, {"LossNotDecreasing": {"num_steps": 100}, "Overtraining": {"delta": -1}})}
    assert verdicts["LossNotDecreasing"].status == INSUFFICIENT_DATA
    assert verdicts["Overtraining"].status == NO_ISSUES_FOUND
    with pytest.raises(ValueError, match="unknown rule"):
        rules.evaluate_all(constant, {"NoSuchRule": {}})


def test_evidence_reader_ignores_a_missing_folder(tmp_path: Path) -> None:
    from train.debugger.evidence import collect

    evidence = collect(tmp_path / "absent", tmp_path / "absent")
    assert evidence.train_loss == [] and evidence.system == {}
