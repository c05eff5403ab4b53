"""The naive peer: the flask app a user writes in an afternoon (for bench/serve_peers.py).

Run by gunicorn with 2 sync workers; each worker loads the model at import, with torch at one
thread, and answers with PIL decoding, torchvision transforms and eager fp32 torch. It reads
the same artifact as `serve` (NAIVE_MODEL_DIR: model.safetensors + metadata.json), so both
run the same weights at the same input size.
"""

from __future__ import annotations

import io
import json
import os

import torch
from flask import Flask, Response, request
from PIL import Image
from safetensors.torch import load_file
from torchvision import models, transforms

torch.set_num_threads(1)
model_dir = os.environ["NAIVE_MODEL_DIR"]
with open(os.path.join(model_dir, "metadata.json")) as fh:
    meta = json.load(fh)
model = getattr(models, f"resnet{meta['num_layers']}")(num_classes=meta["num_classes"])
model.load_state_dict(load_file(os.path.join(model_dir, "model.safetensors")))
model.eval()
spec = meta["input"]
transform = transforms.Compose([
    transforms.Resize(spec["resize"]),
    transforms.CenterCrop((spec["height"], spec["width"])),
    transforms.ToTensor(),
    transforms.Normalize(spec["mean"], spec["std"]),
])
app = Flask(__name__)


@app.get("/ping")
def ping() -> Response:
    return Response(status=200)


@app.post("/invocations")
def invocations() -> Response:
    image = Image.open(io.BytesIO(request.get_data())).convert("RGB")
    with torch.no_grad():
        probabilities = torch.softmax(model(transform(image).unsqueeze(0)), dim=1)[0]
    return Response(json.dumps(probabilities.tolist()), mimetype="application/json")
