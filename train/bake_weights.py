"""Download torchvision ImageNet weights into TORCH_HOME at image build time.

    python -m train.bake_weights resnet50 vgg16

Jobs started from the image then find them with ``use_pretrained_model=1`` and never download.
With no names it does nothing, so the Dockerfile can always call it.
"""

from __future__ import annotations

import sys

from common.models import RESNET_DEPTHS

NETWORKS = {"vgg16": ("vgg16", None), **{f"resnet{d}": ("resnet", d) for d in RESNET_DEPTHS}}


def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in NETWORKS]
    if unknown:
        print(f"unknown network(s) {unknown}; choose from {sorted(NETWORKS)}", file=sys.stderr)
        return 2
    from train.pretrained import hub_checkpoint_dir, weights_enum

    for name in names:
        architecture, layers = NETWORKS[name]
        weights_enum(architecture, layers).DEFAULT.get_state_dict(progress=False)
        print(f"baked {name} ImageNet weights into {hub_checkpoint_dir()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
