# Shared by the local_test scripts: choose Docker or process mode, and GPU flags.

# pick_mode IMAGE: "docker" when an engine is reachable and IMAGE is built, else "process".
pick_mode() {
    if command -v docker >/dev/null 2>&1 && docker image inspect "$1" >/dev/null 2>&1; then
        echo docker
    else
        echo process
    fi
}

# gpu_flags: `--gpus all` when Docker has the NVIDIA runtime (nvidia-container-toolkit).
gpu_flags() {
    if docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q nvidia; then
        echo "--gpus all"
    fi
}
