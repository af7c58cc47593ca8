from typing import NamedTuple

from kfp import dsl

from components.image import PROJECT_IMAGE


@dsl.component(base_image=PROJECT_IMAGE)
def deploy_triton(
    repo: dsl.Input[dsl.Model],
    endpoint: dsl.Output[dsl.Artifact],
    deploy_target: str = "local",
    storage_uri: str = "",
    namespace: str = "lowres-ocr",
    gpus: int = 0,
    triton_image: str = "ghcr.io/lowres-ocr/lowres-ocr-triton:0.1.0",
) -> NamedTuple("Endpoint", [("http_url", str), ("grpc_url", str)]):
    """local: start tritonserver detached (pid/ports in ``endpoint``); kubernetes / kserve: apply and wait for ready."""
    import json
    from collections import namedtuple
    from pathlib import Path

    from lowres_ocr.cluster.steps import deploy_cluster
    from lowres_ocr.serving.steps import deploy_local

    if deploy_target == "local":
        info = deploy_local(Path(repo.path), Path(endpoint.path).with_suffix(".server"))
    else:
        info = deploy_cluster(deploy_target, Path(repo.path), storage_uri, namespace, gpus, triton_image)
    Path(endpoint.path).write_text(json.dumps(info, indent=1))
    endpoint.metadata.update(info)
    print(info)
    return namedtuple("Endpoint", ["http_url", "grpc_url"])(info["http_url"], info["grpc_url"])
