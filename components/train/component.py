from kfp import dsl

from components.image import PROJECT_IMAGE


@dsl.component(base_image=PROJECT_IMAGE)
def train(
    lmdb: dsl.Input[dsl.Dataset],
    model: dsl.Output[dsl.Model],
    metrics: dsl.Output[dsl.Metrics],
    preset: str = "default",
    launcher: str = "local",
    nnodes: int = 1,
    nproc_per_node: int = 2,
    gpus: int = 0,
    steps: int = 0,
    init_from: str = "",
    image: str = "",
    namespace: str = "lowres-ocr",
    timeout_s: int = 21600,
):
    """torchrun here (launcher ``local``) or a PyTorchJob / TrainJob on the cluster; writes ``model.pt``."""
    import hashlib
    import json
    from pathlib import Path

    from lowres_ocr.train.steps import train_cluster, train_local

    out = Path(model.path)
    if launcher == "local":
        info = train_local(Path(lmdb.path), out, preset, nproc_per_node, steps, init_from)
    else:
        run_id = hashlib.sha1(model.uri.encode()).hexdigest()[:12]
        info = train_cluster(Path(lmdb.path), out, launcher, preset, nnodes, nproc_per_node, gpus, steps,
                             init_from, image, namespace, run_id, float(timeout_s))
    model.metadata.update({"preset": preset, "launcher": launcher, "nnodes": nnodes, "nproc_per_node": nproc_per_node})
    for key, value in info.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            metrics.log_metric(key.replace("/", "_"), float(value))
    print(info)
    # the Metrics artifact as a file too: kfp.local's cache treats an artifact without a file as missing
    Path(metrics.path).write_text(json.dumps(metrics.metadata))
