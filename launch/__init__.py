"""Launchers: one-line SageMaker Python SDK commands for the sm-vision images.

    python -m launch.train      a training job (channels, spot, Debugger, Profiler)
    python -m launch.tune       a tuning job, or ``--local`` trials as local processes
    python -m launch.deploy     an endpoint from a training job or a model.tar.gz
    python -m launch.invoke     send local images to an endpoint, print the top-k labels
    python -m launch.transform  a batch transform job over an S3 prefix
    python -m launch.label_job  a Ground Truth labeling job over raw images in S3 (+ work team)
    python -m launch.label_workflow  Ground Truth manifest -> split -> upload -> Pipe-mode training
    python -m launch.api        a public HTTPS API (API Gateway, API key) in front of an endpoint
    python -m launch.delete     an endpoint, its configuration and its model(s)

Each module only parses arguments and calls the SDK (or boto3 where the SDK has no call); the
images hold all the logic. Nothing here imports the SDK (or torch) at import time, so
``--help`` is instant.
"""
