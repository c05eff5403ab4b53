"""``launch.tune`` on SageMaker: the CreateHyperParameterTuningJob request, and the best job.

moto accepts CreateHyperParameterTuningJob and DescribeHyperParameterTuningJob but starts no
training jobs: its BestTrainingJob is a fixed placeholder (``FakeTrainingJobName``). The tests
check the request in full and that the launcher prints whatever BestTrainingJob says.
"""

from __future__ import annotations

import json

from launch import metric_definitions
from launch import tune as launcher
from tests.launch.conftest import BUCKET, IMAGE, JOB_ARGS

CHANNELS = ["--channel", "train=s3://data/train/", "--channel", "validation=s3://data/valid/",
            "--data-format", "folder"]


def test_defaults_are_the_seed_tuning_job(aws, capsys):
    assert launcher.main([*JOB_ARGS, *CHANNELS, "--hp", "epochs=5", "--max-jobs", "8",
                          "--wait"]) == 0
    request = aws.call("CreateHyperParameterTuningJob")
    config = request["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Bayesian"
    assert config["HyperParameterTuningJobObjective"] == {
        "Type": "Minimize", "MetricName": "average test loss"}
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 8,
                                        "MaxParallelTrainingJobs": 2}
    ranges = config["ParameterRanges"]
    assert ranges["ContinuousParameterRanges"] == [
        {"Name": "lr", "MinValue": "0.001", "MaxValue": "0.1", "ScalingType": "Auto"}]
    assert ranges["CategoricalParameterRanges"] == [
        {"Name": "batch-size", "Values": ["32", "64", "128", "256", "512"]}]
    assert ranges["IntegerParameterRanges"] == []
    definition = request["TrainingJobDefinition"]
    spec = definition["AlgorithmSpecification"]
    assert spec["TrainingImage"] == IMAGE
    assert spec["MetricDefinitions"] == metric_definitions.CLASSIFICATION
    assert {"Name": "average test loss", "Regex": r"Test set: Average loss: ([0-9\.]+)"} in (
        spec["MetricDefinitions"])
    assert definition["StaticHyperParameters"]["epochs"] == "5"
    assert {c["ChannelName"]: c["ContentType"] for c in definition["InputDataConfig"]} == {
        "train": "application/x-image", "validation": "application/x-image"}
    out = capsys.readouterr().out
    assert "best training job: FakeTrainingJobName" in out  # moto's placeholder best job


def test_ranges_from_a_file_and_flags_with_a_maximised_objective(aws, tmp_path):
    ranges = tmp_path / "ranges.json"
    ranges.write_text(json.dumps({
        "learning_rate": {"type": "continuous", "min": 0.0001, "max": 0.1,
                          "scaling": "Logarithmic"},
        "num_layers": {"type": "categorical", "values": [18, 34, 50]},
    }))
    assert launcher.main([
        *JOB_ARGS, *CHANNELS, "--ranges-file", str(ranges),
        "--range", "mini_batch_size=integer:16:128:log", "--strategy", "random",
        "--objective-metric", "validation:accuracy", "--max-jobs", "4",
        "--max-parallel-jobs", "1", "--seed", "7",
    ]) == 0
    config = aws.call("CreateHyperParameterTuningJob")["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Random"
    assert config["RandomSeed"] == 7
    assert config["HyperParameterTuningJobObjective"] == {
        "Type": "Maximize", "MetricName": "validation:accuracy"}
    ranges = config["ParameterRanges"]
    assert ranges["ContinuousParameterRanges"] == [{
        "Name": "learning_rate", "MinValue": "0.0001", "MaxValue": "0.1",
        "ScalingType": "Logarithmic"}]
    assert ranges["IntegerParameterRanges"] == [{
        "Name": "mini_batch_size", "MinValue": "16", "MaxValue": "128",
        "ScalingType": "Logarithmic"}]
    assert ranges["CategoricalParameterRanges"] == [
        {"Name": "num_layers", "Values": ["18", "34", "50"]}]


def test_an_objective_the_metrics_do_not_define_is_refused(aws, capsys):
    assert launcher.main([*JOB_ARGS, *CHANNELS, "--objective-metric", "val:f2"]) == 1
    assert "give --objective-regex" in capsys.readouterr().err
    assert not aws.calls("CreateHyperParameterTuningJob")


def test_spot_tuning_sends_a_checkpoint_prefix_of_its_own(aws):
    assert launcher.main([*JOB_ARGS, *CHANNELS, "--spot", "--max-run", "3600",
                          "--max-wait", "7200", "--job-name", "hpo-spot"]) == 0
    request = aws.call("CreateHyperParameterTuningJob")
    assert request["HyperParameterTuningJobName"] == "hpo-spot"
    definition = request["TrainingJobDefinition"]
    assert definition["EnableManagedSpotTraining"] is True
    assert definition["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600,
                                               "MaxWaitTimeInSeconds": 7200}
    assert definition["CheckpointConfig"] == {"S3Uri": f"s3://{BUCKET}/hpo-spot/checkpoints/"}


def test_a_given_checkpoint_uri_is_kept_for_the_tuning_job(aws):
    assert launcher.main([*JOB_ARGS, *CHANNELS, "--spot", "--job-name", "hpo-ckpt",
                          "--checkpoint-s3-uri", "s3://ckpt/hpo/"]) == 0
    definition = aws.call("CreateHyperParameterTuningJob")["TrainingJobDefinition"]
    assert definition["CheckpointConfig"] == {"S3Uri": "s3://ckpt/hpo/"}


def test_debugger_or_profiler_on_a_tuning_job_is_refused_with_the_reason(aws, capsys):
    for flag in ("--debugger", "--profiler"):
        assert launcher.main([*JOB_ARGS, *CHANNELS, flag]) == 1
        err = capsys.readouterr().err
        assert "tuning job" in err and flag in err and "launch.train" in err
    assert not aws.calls("CreateHyperParameterTuningJob")


def test_default_tuning_job_names_are_unique_within_a_minute(aws):
    for _ in range(3):
        assert launcher.main([*JOB_ARGS, *CHANNELS, "--base-job-name", "dogs"]) == 0
    names = [c["HyperParameterTuningJobName"]
             for c in aws.calls("CreateHyperParameterTuningJob")]
    assert len(set(names)) == 3, names
    assert all(n.startswith("dogs-") and len(n) <= 32 for n in names)


def test_a_built_in_image_is_tuned_on_its_own_metric_without_definitions(aws):
    assert launcher.main([*JOB_ARGS, *CHANNELS, "--no-metric-definitions"]) == 0
    request = aws.call("CreateHyperParameterTuningJob")
    assert request["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"] == {
        "Type": "Maximize", "MetricName": "validation:accuracy"}
    assert "MetricDefinitions" not in request["TrainingJobDefinition"]["AlgorithmSpecification"]


def test_instance_count_and_channel_distribution_are_sent_per_trial(aws):
    assert launcher.main([*JOB_ARGS, *CHANNELS, "--instance-count", "2",
                          "--channel-config", "train:distribution=ShardedByS3Key"]) == 0
    definition = aws.call("CreateHyperParameterTuningJob")["TrainingJobDefinition"]
    assert definition["HyperParameterTuningResourceConfig"]["InstanceCount"] == 2
    distributions = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3DataDistributionType"]
                     for c in definition["InputDataConfig"]}
    assert distributions == {"train": "ShardedByS3Key", "validation": "FullyReplicated"}
