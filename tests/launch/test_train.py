"""``launch.train`` through the real SDK: the CreateTrainingJob request SageMaker would receive."""

from __future__ import annotations

import json

import pytest

from launch import metric_definitions
from launch import train as launcher
from tests.launch.conftest import BUCKET, IMAGE, JOB_ARGS, ROLE


def test_recordio_job_with_spot_checkpoints_and_hyperparameters(aws, tmp_path, capsys):
    hp_file = tmp_path / "hp.json"
    hp_file.write_text(json.dumps({"num_layers": 18, "epochs": 10, "use_pretrained_model": 0}))
    code = launcher.main([
        *JOB_ARGS, "--instance-type", "ml.p3.2xlarge", "--volume-size", "50",
        "--max-run", "3600", "--spot", "--max-wait", "7200", "--job-name", "digits-rec",
        "--channel", "train=s3://data/digits_train.rec",
        "--channel", "validation=s3://data/digits_val.rec",
        "--data-format", "recordio", "--distribution", "ShardedByS3Key",
        "--hp-file", str(hp_file), "--hp", "epochs=3", "--hp", "lr=0.01",
    ])
    assert code == 0
    request = aws.call("CreateTrainingJob")
    assert request["TrainingJobName"] == "digits-rec"
    assert request["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert request["AlgorithmSpecification"]["TrainingInputMode"] == "File"
    assert request["AlgorithmSpecification"]["MetricDefinitions"] == (
        metric_definitions.CLASSIFICATION)
    assert request["RoleArn"] == ROLE
    assert request["HyperParameters"] == {
        "num_layers": "18", "epochs": "3", "use_pretrained_model": "0", "lr": "0.01"}
    assert request["ResourceConfig"] == {
        "InstanceType": "ml.p3.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50}
    assert request["EnableManagedSpotTraining"] is True
    assert request["StoppingCondition"] == {
        "MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert request["CheckpointConfig"]["S3Uri"] == f"s3://{BUCKET}/digits-rec/checkpoints/"
    channels = {c["ChannelName"]: c for c in request["InputDataConfig"]}
    assert set(channels) == {"train", "validation"}
    assert channels["train"]["ContentType"] == "application/x-recordio"
    source = channels["train"]["DataSource"]["S3DataSource"]
    assert source["S3Uri"] == "s3://data/digits_train.rec"
    assert source["S3DataDistributionType"] == "ShardedByS3Key"
    # No Debugger hook or profiler unless asked: SageMaker starts no side jobs.
    assert "DebugHookConfig" not in request and "DebugRuleConfigurations" not in request
    assert request["ProfilerConfig"]["DisableProfiler"] is True
    out = capsys.readouterr().out
    assert "training job: digits-rec" in out
    assert f"s3://{BUCKET}/digits-rec/output/model.tar.gz" in out


def _channels(request: dict) -> dict[str, dict]:
    return {c["ChannelName"]: c for c in request["InputDataConfig"]}


def test_image_and_lst_channels_are_sent_as_x_image_in_file_mode(aws):
    assert launcher.main([
        *JOB_ARGS, "--data-format", "lst",
        "--channel", "train=s3://data/train/", "--channel", "validation=s3://data/validation/",
        "--channel", "train_lst=s3://data/train_lst/",
        "--channel", "validation_lst=s3://data/validation_lst/",
        "--hp", "num_classes=10",
    ]) == 0
    request = aws.call("CreateTrainingJob")
    channels = _channels(request)
    assert set(channels) == {"train", "validation", "train_lst", "validation_lst"}
    for channel in channels.values():
        assert channel["ContentType"] == "application/x-image"
        assert channel.get("InputMode", "File") == "File"
        assert channel["DataSource"]["S3DataSource"]["S3DataType"] == "S3Prefix"
    assert request["AlgorithmSpecification"]["TrainingInputMode"] == "File"


def test_augmented_manifest_channels_in_pipe_mode_with_a_file_mode_weights_channel(aws):
    assert launcher.main([
        *JOB_ARGS, "--data-format", "manifest", "--attribute-names", "source-ref,class",
        "--channel", "train=s3://data/train.manifest",
        "--channel", "validation=s3://data/validation.manifest",
        "--channel", "weights=s3://data/weights/",
        "--channel-config", "weights:input_mode=File",
        "--channel-config", "weights:s3_data_type=S3Prefix",
        "--channel-config", "weights:record_wrapping=None",
        "--channel-config", "weights:content_type=application/octet-stream",
        "--hp", "use_pretrained_model=1",
    ]) == 0
    request = aws.call("CreateTrainingJob")
    assert request["AlgorithmSpecification"]["TrainingInputMode"] == "Pipe"
    channels = _channels(request)
    for name in ("train", "validation"):
        channel = channels[name]
        assert channel["InputMode"] == "Pipe"
        assert channel["ContentType"] == "application/x-recordio"
        assert channel["RecordWrapperType"] == "RecordIO"
        source = channel["DataSource"]["S3DataSource"]
        assert source["S3DataType"] == "AugmentedManifestFile"
        assert source["AttributeNames"] == ["source-ref", "class"]
    weights = channels["weights"]
    assert weights["InputMode"] == "File"
    assert weights["ContentType"] == "application/octet-stream"
    assert weights["DataSource"]["S3DataSource"]["S3DataType"] == "S3Prefix"
    assert "AttributeNames" not in weights["DataSource"]["S3DataSource"]


# FrameworkProfile is what the seed uses; the SDK warns that framework profiling is deprecated.
@pytest.mark.filterwarnings("ignore:Framework profiling will be deprecated")
def test_dog_breed_job_with_the_seed_debugger_rules_and_profiler(aws, capsys):
    assert launcher.main([
        *JOB_ARGS, "--input-mode", "FastFile",
        "--channel", "training=s3://data/dogImages/train/",
        "--channel", "valid=s3://data/dogImages/valid/",
        "--channel", "test=s3://data/dogImages/test/",
        "--hp", "architecture=vgg16", "--hp", "lr=0.001", "--hp", "batch-size=64",
        "--debugger", "--profiler", "--output-path", f"s3://{BUCKET}/dog-breed/",
    ]) == 0
    request = aws.call("CreateTrainingJob")
    assert request["AlgorithmSpecification"]["TrainingInputMode"] == "FastFile"
    assert {c["ChannelName"]: c["InputMode"] for c in request["InputDataConfig"]} == {
        "training": "FastFile", "valid": "FastFile", "test": "FastFile"}
    assert request["OutputDataConfig"]["S3OutputPath"] == f"s3://{BUCKET}/dog-breed/"
    rules = {r["RuleConfigurationName"]: r for r in request["DebugRuleConfigurations"]}
    assert set(rules) == {"LossNotDecreasing", "Overfit", "Overtraining",
                          "PoorWeightInitialization"}
    assert all(r["RuleEvaluatorImage"].endswith(".amazonaws.com/sagemaker-debugger-rules:latest")
               for r in rules.values())
    hook = request["DebugHookConfig"]
    assert hook["HookParameters"] == {"train.save_interval": "100", "eval.save_interval": "10"}
    # The rules add the collections they read (losses, relu_input) beside the seed's own.
    collections = {c["CollectionName"]: c for c in hook["CollectionConfigurations"]}
    assert collections["CrossEntropyLoss_output_0"]["CollectionParameters"]["include_regex"] == (
        "CrossEntropyLoss_output_0")
    profiler_rules = {r["RuleConfigurationName"] for r in request["ProfilerRuleConfigurations"]}
    assert {"LowGPUUtilization", "ProfilerReport"} <= profiler_rules
    profiler = request["ProfilerConfig"]
    assert profiler["ProfilingIntervalInMilliseconds"] == 500
    # The SDK writes these as its own JSON-like strings (with a trailing comma).
    assert '"NumSteps": 10' in profiler["ProfilingParameters"]["DetailedProfilingConfig"]
    assert "training job: sm-vision-" in capsys.readouterr().out


def test_segmentation_metrics_and_extra_definitions(aws):
    assert launcher.main([
        *JOB_ARGS, "--task", "segmentation", "--channel", "train=s3://data/train/",
        "--metric", r"train:mIOU=train:mIOU=([0-9\.]+)",
    ]) == 0
    definitions = aws.call("CreateTrainingJob")["AlgorithmSpecification"]["MetricDefinitions"]
    assert definitions == [
        {"Name": "validation:mIOU", "Regex": r"validation:mIOU=([0-9\.]+)"},
        {"Name": "validation:pixel_accuracy", "Regex": r"validation:pixel_accuracy=([0-9\.]+)"},
        {"Name": "train:loss", "Regex": r"train:loss=([0-9\.]+)"},
        {"Name": "train:mIOU", "Regex": r"train:mIOU=([0-9\.]+)"},
    ]


def test_wait_follows_the_job_to_its_end(aws, capsys):
    assert launcher.main([*JOB_ARGS, "--channel", "train=s3://data/train/", "--wait"]) == 0
    assert "status: Completed" in capsys.readouterr().out
    # The SDK followed the job: it described it and asked CloudWatch Logs for its streams.
    assert aws.calls("DescribeTrainingJob")
    assert aws.requests("Logs_20140328.DescribeLogStreams")


@pytest.mark.parametrize("argv, message", [
    (["--channel", "train=s3://d/", "--data-format", "manifest"], "--attribute-names"),
    (["--channel", "train=s3://d/", "--channel-config", "valid:input_mode=File"],
     "not given with --channel"),
    (["--channel", "train=s3://d/", "--channel-config", "train:mode=File"], "NAME:KEY=VALUE"),
])
def test_channel_mistakes_are_reported_before_any_request(aws, capsys, argv, message):
    assert launcher.main([*JOB_ARGS, *argv]) == 1
    assert message in capsys.readouterr().err
    assert not aws.calls("CreateTrainingJob")


def test_a_metric_named_like_a_default_replaces_it_instead_of_being_sent_twice(aws):
    # The dog-breed notebook's definition, translated flag for flag.
    assert launcher.main([
        *JOB_ARGS, "--channel", "train=s3://data/train/",
        "--metric", r"average test loss=Test set: Average loss: ([0-9\.]+)",
        "--metric", r"train:loss=loss: ([0-9\.]+)",
    ]) == 0
    definitions = aws.call("CreateTrainingJob")["AlgorithmSpecification"]["MetricDefinitions"]
    names = [d["Name"] for d in definitions]
    assert len(names) == len(set(names)), names
    assert names == [d["Name"] for d in metric_definitions.CLASSIFICATION]
    by_name = {d["Name"]: d["Regex"] for d in definitions}
    assert by_name["train:loss"] == r"loss: ([0-9\.]+)"  # the user's wins, in place


def test_a_built_in_image_can_be_sent_no_metric_definitions(aws):
    assert launcher.main([*JOB_ARGS, "--channel", "train=s3://data/train/",
                          "--no-metric-definitions"]) == 0
    spec = aws.call("CreateTrainingJob")["AlgorithmSpecification"]
    assert "MetricDefinitions" not in spec


def test_spot_max_wait_below_max_run_is_refused_before_any_request(aws, capsys):
    assert launcher.main([*JOB_ARGS, "--channel", "train=s3://data/train/", "--spot",
                          "--max-run", "7200", "--max-wait", "3600"]) == 1
    err = capsys.readouterr().err
    assert "--max-wait 3600" in err and "--max-run 7200" in err
    assert len(err.strip().splitlines()) == 1
    # No request at all, not even the SDK's bucket check: only the fixture's CreateBucket.
    assert [r["method"] for r in aws.requests()] == ["PUT"]


def test_max_wait_without_spot_is_refused(aws, capsys):
    assert launcher.main([*JOB_ARGS, "--channel", "train=s3://data/train/",
                          "--max-wait", "7200"]) == 1
    assert "--spot" in capsys.readouterr().err
    assert not aws.calls("CreateTrainingJob")


def test_incremental_training_from_a_previous_model(aws):
    # As the built-in algorithms' notebooks send it: a "model" channel, S3Prefix,
    # FullyReplicated, application/x-sagemaker-model, read as a file beside Pipe-mode data.
    assert launcher.main([
        *JOB_ARGS, "--data-format", "recordio", "--input-mode", "Pipe",
        "--channel", "train=s3://data/train.rec", "--channel", "validation=s3://data/val.rec",
        "--model-data", "s3://models/first/output/model.tar.gz",
    ]) == 0
    model = _channels(aws.call("CreateTrainingJob"))["model"]
    assert model["ContentType"] == "application/x-sagemaker-model"
    assert model["InputMode"] == "File"
    assert model.get("RecordWrapperType", "None") == "None"
    assert model["DataSource"]["S3DataSource"] == {
        "S3DataType": "S3Prefix", "S3Uri": "s3://models/first/output/model.tar.gz",
        "S3DataDistributionType": "FullyReplicated"}


def test_a_channel_named_model_is_a_model_channel(aws):
    assert launcher.main([*JOB_ARGS, "--data-format", "folder",
                          "--channel", "train=s3://data/train/",
                          "--channel", "model=s3://models/first/output/"]) == 0
    channels = _channels(aws.call("CreateTrainingJob"))
    assert channels["model"]["ContentType"] == "application/x-sagemaker-model"
    assert channels["train"]["ContentType"] == "application/x-image"


def test_model_data_and_a_model_channel_together_are_refused(aws, capsys):
    assert launcher.main([*JOB_ARGS, "--channel", "train=s3://d/", "--channel", "model=s3://m/",
                          "--model-data", "s3://m/model.tar.gz"]) == 1
    assert "--model-data" in capsys.readouterr().err
    assert not aws.calls("CreateTrainingJob")


def test_several_instances_with_sharded_and_replicated_channels(aws):
    assert launcher.main([
        *JOB_ARGS, "--instance-type", "ml.p3.2xlarge", "--instance-count", "4",
        "--channel", "train=s3://data/train/", "--channel", "validation=s3://data/valid/",
        "--channel-config", "train:distribution=ShardedByS3Key",
    ]) == 0
    request = aws.call("CreateTrainingJob")
    assert request["ResourceConfig"]["InstanceCount"] == 4
    assert {name: c["DataSource"]["S3DataSource"]["S3DataDistributionType"]
            for name, c in _channels(request).items()} == {
        "train": "ShardedByS3Key", "validation": "FullyReplicated"}
