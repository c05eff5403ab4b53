"""``launch.label_job``: a Ground Truth job over raw images in S3, its files and its work team.

S3 and Cognito are moto's (real requests to the emulated APIs). moto has no Ground Truth:
ListWorkforces, CreateWorkforce, DescribeWorkforce, CreateWorkteam, CreateLabelingJob and
DescribeLabelingJob go to a botocore Stubber, which checks each request against SageMaker's
API model; the tests assert each request exactly and answer as SageMaker documents.
"""

from __future__ import annotations

import json
import re

import boto3
import botocore.session
import pytest

from launch import label_job, labeling
from tests.launch.conftest import (
    ACCOUNT,
    BUCKET,
    REGION,
    ROLE,
    SESSION_ARGS,
    TEAM_ARN,
    described,
)

PORTAL = "abcd1234.labeling.us-east-1.sagemaker.aws"
IMAGES = ["IMG_0085.JPG", "IMG_0086.JPG", "sub/IMG_0087.png"]
JOB_ARGS = [*SESSION_ARGS, "--role", ROLE, "--images", f"s3://{BUCKET}/lab3/raw/",
            "--labels", "RH", "LH", "--instructions", "Right hand (RH) or left hand (LH)?",
            "--job-name", "hands"]


@pytest.fixture
def raw_images(aws) -> list[str]:
    s3 = boto3.client("s3", region_name=REGION)
    for name in [*IMAGES, "notes.txt"]:
        s3.put_object(Bucket=BUCKET, Key=f"lab3/raw/{name}", Body=b"image bytes")
    return [f"s3://{BUCKET}/lab3/raw/{name}" for name in sorted(IMAGES)]


def _s3_text(key: str) -> str:
    return boto3.client("s3", region_name=REGION).get_object(
        Bucket=BUCKET, Key=key)["Body"].read().decode()


def test_a_classification_job_with_a_new_private_team(gt, raw_images, capsys):
    gt.respond("list_workforces", {"Workforces": []})
    gt.respond("create_workforce", {"WorkforceArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:"
                                                    "workforce/hands-team"})
    gt.respond("describe_workforce", {"Workforce": {
        "WorkforceName": "hands-team", "WorkforceArn": "arn:aws:sagemaker:us-east-1:"
        "123456789012:workforce/hands-team", "SubDomain": PORTAL}})
    gt.respond("create_workteam", {"WorkteamArn": TEAM_ARN})
    gt.job_created("hands")
    assert label_job.main([*JOB_ARGS, "--create-workteam", "--workteam-name", "hands-team",
                           "--email", "ann@example.com", "--email", "bob@example.com"]) == 0
    gt.stub.assert_no_pending_responses()

    # The input manifest lists the images, not the other files; the categories; the UI.
    assert _s3_text("hands/input.manifest").splitlines() == [
        json.dumps({"source-ref": uri}) for uri in raw_images]
    assert json.loads(_s3_text("hands/label-categories.json")) == {
        "document-version": "2018-11-28", "labels": [{"label": "RH"}, {"label": "LH"}]}
    template = _s3_text("hands/template.liquid")
    assert '<crowd-image-classifier\n    name="crowd-image-classifier"' in template
    assert 'src="{{ task.input.taskObject | grant_read_access }}"' in template
    assert 'categories="{{ task.input.labels | to_json | escape }}"' in template
    assert 'header="Right hand (RH) or left hand (LH)?"' in template

    # Cognito (moto): the pool, its domain, the portal's app client, the group and its members.
    cognito = boto3.client("cognito-idp", region_name=REGION)
    [pool] = cognito.list_user_pools(MaxResults=10)["UserPools"]
    [client] = cognito.list_user_pool_clients(UserPoolId=pool["Id"])["UserPoolClients"]
    settings = cognito.describe_user_pool_client(
        UserPoolId=pool["Id"], ClientId=client["ClientId"])["UserPoolClient"]
    assert settings["CallbackURLs"] == [f"https://{PORTAL}/oauth2/idpresponse"]
    assert settings["AllowedOAuthFlows"] == ["code", "implicit"]
    assert "ClientSecret" in settings
    members = cognito.list_users_in_group(UserPoolId=pool["Id"], GroupName="hands-team")
    # E-mail sign-in: Cognito names each user by a generated id and keeps the address.
    emails = sorted(a["Value"] for u in members["Users"] for a in u["Attributes"]
                    if a["Name"] == "email")
    assert emails == ["ann@example.com", "bob@example.com"]
    domain = cognito.describe_user_pool(UserPoolId=pool["Id"])["UserPool"]["Domain"]
    assert domain.startswith("hands-team-")

    # Ground Truth (stubbed): the workforce on that pool, the team, and the job.
    cognito_config = {"UserPool": pool["Id"], "ClientId": client["ClientId"]}
    assert gt.request("CreateWorkforce") == {"WorkforceName": "hands-team",
                                             "CognitoConfig": cognito_config}
    assert gt.request("CreateWorkteam") == {
        "WorkteamName": "hands-team", "Description": "Labels images for hands",
        "MemberDefinitions": [{"CognitoMemberDefinition": {**cognito_config,
                                                           "UserGroup": "hands-team"}}]}
    lambdas = f"arn:aws:lambda:{REGION}:432418664414:function"
    assert gt.request("CreateLabelingJob") == {
        "LabelingJobName": "hands",
        "LabelAttributeName": "hands",
        "InputConfig": {"DataSource": {"S3DataSource": {
            "ManifestS3Uri": f"s3://{BUCKET}/hands/input.manifest"}}},
        "OutputConfig": {"S3OutputPath": f"s3://{BUCKET}/hands/output/"},
        "RoleArn": ROLE,
        "LabelCategoryConfigS3Uri": f"s3://{BUCKET}/hands/label-categories.json",
        "HumanTaskConfig": {
            "WorkteamArn": TEAM_ARN,
            "UiConfig": {"UiTemplateS3Uri": f"s3://{BUCKET}/hands/template.liquid"},
            "PreHumanTaskLambdaArn": f"{lambdas}:PRE-ImageMultiClass",
            "TaskKeywords": ["Images", "Classification"],
            "TaskTitle": "Image classification: RH, LH",
            "TaskDescription": "Right hand (RH) or left hand (LH)?",
            "NumberOfHumanWorkersPerDataObject": 1,
            "TaskTimeLimitInSeconds": 300,
            "TaskAvailabilityLifetimeInSeconds": 864000,
            "MaxConcurrentTaskCount": 1000,
            "AnnotationConsolidationConfig": {
                "AnnotationConsolidationLambdaArn": f"{lambdas}:ACS-ImageMultiClass"},
        },
    }
    out = capsys.readouterr().out
    assert f"they sign in at https://{PORTAL}" in out
    assert "labeling job: hands" in out


def test_an_existing_team_then_wait_and_print_the_training_command(gt, raw_images, capsys):
    gt.job_created("hands")
    output = f"s3://{BUCKET}/hands/output/hands/manifests/output/output.manifest"
    progress = {"TotalLabeled": 1, "HumanLabeled": 1, "Unlabeled": 2}
    done = {"TotalLabeled": 3, "HumanLabeled": 3, "Unlabeled": 0}
    for status, counters in (("InProgress", progress), ("InProgress", progress),
                             ("Completed", done)):
        extra = {"LabelingJobOutput": {"OutputDatasetS3Uri": output}} if (
            status == "Completed") else {}
        gt.respond("describe_labeling_job", described("hands", status, LabelCounters=counters,
                                                      **extra))
    assert label_job.main([*JOB_ARGS, "--workteam-arn", TEAM_ARN, "--wait",
                           "--poll-seconds", "0"]) == 0
    gt.stub.assert_no_pending_responses()
    assert gt.request("CreateLabelingJob")["HumanTaskConfig"]["WorkteamArn"] == TEAM_ARN
    lines = capsys.readouterr().out.splitlines()
    # One line per change of the counters, then where the labels are and what to run next.
    assert lines[-4:] == [
        "InProgress: 1 labeled (1 by workers, 0 automatically), 2 to go, 0 failed",
        "Completed: 3 labeled (3 by workers, 0 automatically), 0 to go, 0 failed",
        f"output manifest: {output}",
        f"train on it with: python -m launch.label_workflow {output} --region {REGION} "
        f"--bucket {BUCKET} --role {ROLE} --image-uri IMAGE --hp num_classes=2",
    ]


def test_a_failed_job_is_an_error_with_its_reason(gt, raw_images, capsys):
    gt.job_created("hands")
    gt.respond("describe_labeling_job", described(
        "hands", "Failed", FailureReason="ClientError: no access to s3://b/m"))
    assert label_job.main([*JOB_ARGS, "--workteam-arn", TEAM_ARN, "--wait",
                           "--poll-seconds", "0"]) == 1
    assert capsys.readouterr().err.strip() == (
        "error: labeling job hands Failed: ClientError: no access to s3://b/m")


def test_a_segmentation_job_uses_its_lambdas_template_and_a_ref_attribute(gt, raw_images):
    gt.job_created("roads")
    argv = [*JOB_ARGS, "--workteam-arn", TEAM_ARN, "--task", "semantic-segmentation",
            "--job-name", "roads", "--labels", "road", "car", "person"]
    assert label_job.main(argv) == 0
    request = gt.request("CreateLabelingJob")
    assert request["LabelAttributeName"] == "roads-ref"
    task = request["HumanTaskConfig"]
    assert task["PreHumanTaskLambdaArn"].endswith(":432418664414:function:PRE-SemanticSegmentation")
    assert task["AnnotationConsolidationConfig"]["AnnotationConsolidationLambdaArn"].endswith(
        ":432418664414:function:ACS-SemanticSegmentation")
    template = _s3_text("roads/template.liquid")
    assert "<crowd-semantic-segmentation" in template
    assert 'labels="{{ task.input.labels | to_json | escape }}"' in template


@pytest.mark.parametrize("extra, message", [
    (["--region", "sa-east-1", "--workteam-arn", TEAM_ARN], "not offered in sa-east-1"),
    (["--workteam-arn", TEAM_ARN, "--labels", "RH"], "at least two label categories"),
    (["--create-workteam"], "--email"),
    (["--workteam-arn", TEAM_ARN, "--train"], "add --wait"),
    (["--workteam-arn", TEAM_ARN, "--wait", "--train"], "after --"),
    (["--workteam-arn", TEAM_ARN, "--job-name", "bad_name"], "--job-name"),
    (["--workteam-arn", TEAM_ARN, "--task", "semantic-segmentation",
      "--label-attribute", "masks"], "must end in '-ref'"),
])
def test_mistakes_are_refused_before_any_labeling_request(gt, raw_images, capsys, extra,
                                                          message):
    assert label_job.main([*JOB_ARGS, *extra]) == 1
    assert message in capsys.readouterr().err
    assert gt.requests == []


def test_the_lambda_table_is_the_one_in_sagemakers_api_reference():
    model = botocore.session.get_session().get_service_model("sagemaker")
    documented = set()
    for shape, member in (("HumanTaskConfig", "PreHumanTaskLambdaArn"),
                          ("AnnotationConsolidationConfig", "AnnotationConsolidationLambdaArn")):
        text = model.shape_for(shape).members[member].documentation
        documented |= set(re.findall(r"arn:aws:lambda:[a-z0-9-]+:\d{12}:function:"
                                     r"(?:PRE|ACS)-(?:ImageMultiClass|SemanticSegmentation)\b",
                                     text))
    ours = {arn for task in labeling.TASK_TYPES.values() for region in labeling.LAMBDA_ACCOUNTS
            for arn in labeling.lambda_arns(task, region)}
    assert ours == documented
