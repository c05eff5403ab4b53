"""What a Ground Truth labeling job for images needs: the task type's built-in Lambda functions,
the worker UI template, the label-categories file and the input manifest.

The Lambda ARNs are the ones the SageMaker API reference lists for ``PreHumanTaskLambdaArn``
and ``AnnotationConsolidationLambdaArn`` (one AWS account per region; a test checks this table
against the documentation botocore ships). The templates use Ground Truth's crowd HTML elements
(``crowd-image-classifier``, ``crowd-semantic-segmentation``) with the labels the
pre-annotation Lambda passes in (``task.input.labels``).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass

# Accounts that host Ground Truth's built-in Lambda functions, per region.
LAMBDA_ACCOUNTS = {
    "us-east-1": "432418664414",
    "us-east-2": "266458841044",
    "us-west-2": "081040173940",
    "ca-central-1": "918755190332",
    "eu-west-1": "568282634449",
    "eu-west-2": "487402164563",
    "eu-central-1": "203001061592",
    "ap-northeast-1": "477331159723",
    "ap-northeast-2": "845288260483",
    "ap-south-1": "565803892007",
    "ap-southeast-1": "377565633583",
    "ap-southeast-2": "454466003867",
}
LABEL_CATEGORIES_VERSION = "2018-11-28"
CROWD_ELEMENTS = "https://assets.crowd.aws/crowd-html-elements.js"
JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
# Ground Truth's limit on classes for image classification.
MAX_CLASSIFICATION_LABELS = 30


@dataclass(frozen=True)
class TaskType:
    name: str  # the CLI's --task
    lambda_suffix: str  # PRE-<suffix>, ACS-<suffix>
    element: str  # the crowd HTML element
    labels_attribute: str  # the element's attribute that takes the label list
    keywords: tuple[str, ...]
    label_attribute_suffix: str = ""  # segmentation labels are PNG references


TASK_TYPES = {
    "image-classification": TaskType("image-classification", "ImageMultiClass",
                                     "crowd-image-classifier", "categories",
                                     ("Images", "Classification")),
    "semantic-segmentation": TaskType("semantic-segmentation", "SemanticSegmentation",
                                      "crowd-semantic-segmentation", "labels",
                                      ("Images", "Semantic segmentation"),
                                      label_attribute_suffix="-ref"),
}


def lambda_arns(task: TaskType, region: str) -> tuple[str, str]:
    """(pre-annotation, annotation-consolidation) Lambda ARNs of ``task`` in ``region``."""
    account = LAMBDA_ACCOUNTS.get(region)
    if account is None:
        raise ValueError(f"Ground Truth's built-in {task.name} task is not offered in {region}; "
                         f"use one of {', '.join(sorted(LAMBDA_ACCOUNTS))} (--region)")
    base = f"arn:aws:lambda:{region}:{account}:function"
    return f"{base}:PRE-{task.lambda_suffix}", f"{base}:ACS-{task.lambda_suffix}"


def label_attribute(task: TaskType, job_name: str, given: str | None) -> str:
    """The output manifest's label attribute: the job name (as the console names it), with the
    ``-ref`` suffix Ground Truth requires for segmentation."""
    name = given or job_name + task.label_attribute_suffix
    if task.label_attribute_suffix and not name.endswith(task.label_attribute_suffix):
        raise ValueError(f"--label-attribute {name!r}: a {task.name} job's label attribute "
                         f"must end in {task.label_attribute_suffix!r}")
    if not task.label_attribute_suffix and name.endswith(("-ref", "-metadata")):
        raise ValueError(f"--label-attribute {name!r} must not end in -ref or -metadata "
                         f"for {task.name}")
    return name


def check_labels(task: TaskType, labels: list[str]) -> None:
    if len(labels) < 2 and task.name == "image-classification":
        raise ValueError("give at least two label categories, e.g. --labels RH LH")
    if len(labels) > MAX_CLASSIFICATION_LABELS and task.name == "image-classification":
        raise ValueError(f"{len(labels)} label categories: Ground Truth image classification "
                         f"takes at most {MAX_CLASSIFICATION_LABELS}")
    if len(set(labels)) != len(labels) or not all(label.strip() for label in labels):
        raise ValueError(f"label categories must be distinct and non-empty: {labels}")


def label_categories(labels: list[str]) -> dict:
    """The ``LabelCategoryConfigS3Uri`` file."""
    return {"document-version": LABEL_CATEGORIES_VERSION,
            "labels": [{"label": label} for label in labels]}


def ui_template(task: TaskType, labels: list[str], instructions: str) -> str:
    """The worker UI (Liquid + crowd HTML elements) for ``task``: the instructions as header
    and short instructions, the label list in the full instructions."""
    text = html.escape(instructions)
    items = "\n".join(f"        <li>{html.escape(label)}</li>" for label in labels)
    # Liquid placeholders are filled by Ground Truth with each task's image and labels.
    return f"""<script src="{CROWD_ELEMENTS}"></script>
<crowd-form>
  <{task.element}
    name="{task.element}"
    src="{{{{ task.input.taskObject | grant_read_access }}}}"
    header="{text}"
    {task.labels_attribute}="{{{{ task.input.labels | to_json | escape }}}}"
  >
    <full-instructions header="Instructions">
      <p>{text}</p>
      <p>Labels:</p>
      <ul>
{items}
      </ul>
    </full-instructions>
    <short-instructions>
      <p>{text}</p>
    </short-instructions>
  </{task.element}>
</crowd-form>
"""


def input_manifest(image_uris: list[str]) -> str:
    """One ``{"source-ref": ...}`` line per image: Ground Truth's input manifest."""
    return "".join(json.dumps({"source-ref": uri}) + "\n" for uri in image_uris)
