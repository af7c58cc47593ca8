"""KFP steps that deploy Triton on a cluster."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from lowres_ocr.pipeline.workspace import workspace


def upload_repository(repo: Path, storage_uri: str, mount_path: str) -> str:
    """Put the model repository where the server reads it: ``s3://bucket/prefix`` (boto3, credentials from the
    environment / the S3 Secret) or ``pvc://subdir`` (copied under the workspace PVC mounted at ``mount_path``)."""
    files = [p for p in sorted(repo.rglob("*")) if p.is_file()]
    if storage_uri.startswith("s3://"):
        import boto3

        bucket, _, prefix = storage_uri[len("s3://"):].partition("/")
        s3 = boto3.client("s3")
        for f in files:
            s3.upload_file(str(f), bucket, "/".join(x for x in (prefix.strip("/"), f.relative_to(repo).as_posix()) if x))
        return storage_uri
    if storage_uri.startswith("pvc://"):
        dst = Path(mount_path) / storage_uri[len("pvc://"):].strip("/")
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(repo, dst)
        return storage_uri
    raise ValueError(f"storage_uri must be s3://bucket/prefix or pvc://subdir, got {storage_uri!r}")


def deploy_cluster(target: str, repo: Path, storage_uri: str, namespace: str, gpus: int, image: str) -> dict[str, Any]:
    from lowres_ocr.cluster import api, objects, triton
    from lowres_ocr.serving.steps import repository_models

    t = objects.TritonDeployment(image=image, gpus=gpus, model_repository=storage_uri,
                                 placement=objects.Placement(namespace=namespace, mount_path=workspace()))
    upload_repository(repo, storage_uri, t.placement.mount_path)
    ep = triton.deploy(api.connect(), target, t, storage_uri)
    return {"target": target, "http_url": ep.http_url, "grpc_url": ep.grpc_url, "actions": ep.actions,
            "models": repository_models(repo), "image": image}
