"""Which serving image an instance type needs; importable without torch (the launchers use it).

* ``gpu``: the torch/CUDA serving image (``sm-vision-serve``), for GPU instances: SageMaker's
  ``ml.p*`` and ``ml.g*`` families, and local mode's ``local_gpu``;
* ``cpu``: the CPU serving image (``sm-vision-serve-cpu``: OpenVINO on the artifact's
  model.onnx, no torch), for every other instance type (``ml.m*``, ``ml.c*``, ``ml.r*``,
  ``ml.t*``, ...) and local mode's ``local``.

The rule is the instance family's letter, so families SageMaker adds later fall in place.
"""

from __future__ import annotations

GPU = "gpu"
CPU = "cpu"
_GPU_FAMILY_LETTERS = ("p", "g")
_LOCAL = {"local": CPU, "local_gpu": GPU}


def serving_flavour(instance_type: str) -> str:
    """``"gpu"`` or ``"cpu"`` for a SageMaker instance type (``ml.m5.xlarge``, ``local_gpu``)."""
    name = instance_type.strip().lower()
    if name in _LOCAL:
        return _LOCAL[name]
    parts = name.split(".")
    if len(parts) != 3 or parts[0] != "ml" or not parts[1]:
        raise ValueError(f"{instance_type!r} is not a SageMaker instance type such as "
                         "ml.m5.xlarge, ml.g5.xlarge, local or local_gpu")
    return GPU if parts[1].startswith(_GPU_FAMILY_LETTERS) else CPU


def serving_image(instance_type: str, gpu_image: str, cpu_image: str) -> str:
    """The image URI to deploy on ``instance_type``: ``gpu_image`` or ``cpu_image``."""
    return gpu_image if serving_flavour(instance_type) == GPU else cpu_image
