"""Validate Kubernetes objects against the real schemas before they are sent or committed.

Core kinds go through ``kubernetes-validate`` (upstream OpenAPI schemas, strict: unknown fields fail).
Custom resources (PyTorchJob, TrainJob, InferenceService) go through the CRD ``openAPIV3Schema`` vendored in
``manifests/schemas/`` (source repository, tag/commit and sha256 in ``manifests/schemas/SOURCE.md``).
"""

from __future__ import annotations

import functools
import gzip
import json
from pathlib import Path
from typing import Any

K8S_VERSION = "1.33.0"
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "manifests" / "schemas"

# (apiVersion, kind) -> vendored file stem
CRDS: dict[tuple[str, str], str] = {
    ("kubeflow.org/v1", "PyTorchJob"): "pytorchjob.kubeflow.org.v1",
    ("trainer.kubeflow.org/v1alpha1", "TrainJob"): "trainjob.trainer.kubeflow.org.v1alpha1",
    ("serving.kserve.io/v1beta1", "InferenceService"): "inferenceservice.serving.kserve.io.v1beta1",
}


class SchemaError(ValueError):
    """An object does not match its schema; the message names the object and the failing path."""


@functools.lru_cache(maxsize=None)
def crd_document(stem: str) -> dict[str, Any]:
    path = SCHEMA_DIR / f"{stem}.json.gz"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: vendored CRD schema missing (see manifests/schemas/SOURCE.md)")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return json.load(f)


def strict_schema(node: Any) -> Any:
    """A copy of a CRD schema that rejects unknown fields, like the API server's ``fieldValidation=Strict``.

    Structural CRD schemas prune unknown fields silently; a typo in a field name would then be lost on the
    cluster. Every object with ``properties`` and no ``additionalProperties`` /
    ``x-kubernetes-preserve-unknown-fields`` gets ``additionalProperties: false``.
    """
    if isinstance(node, list):
        return [strict_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict_schema(v) for k, v in node.items()}
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


def _crd_validator(stem: str) -> Any:
    import jsonschema

    schema = strict_schema(crd_document(stem)["openAPIV3Schema"])
    # apiVersion/kind/metadata are described loosely in CRDs; metadata is an ObjectMeta checked by the server
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft7Validator(schema)


_VALIDATORS: dict[str, Any] = {}


def _describe(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind', '?')}/{meta.get('name', '?')}"


def validate(obj: dict[str, Any]) -> str:
    """Raise ``SchemaError`` unless ``obj`` matches its schema; returns which schema checked it."""
    key = (obj.get("apiVersion", ""), obj.get("kind", ""))
    meta = obj.get("metadata") or {}
    if not meta.get("name") and not meta.get("generateName"):
        raise SchemaError(f"{_describe(obj)}: metadata.name is required")
    if key in CRDS:
        stem = CRDS[key]
        if stem not in _VALIDATORS:
            _VALIDATORS[stem] = _crd_validator(stem)
        errors = sorted(_VALIDATORS[stem].iter_errors(obj), key=lambda e: list(e.absolute_path))
        if errors:
            e = errors[0]
            where = ".".join(str(p) for p in e.absolute_path) or "<root>"
            raise SchemaError(f"{_describe(obj)}: {where}: {e.message} ({len(errors)} error(s), schema {stem})")
        src = crd_document(stem)["source"]
        return f"{stem} ({src['repository']} {src['ref']})"
    import kubernetes_validate

    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as err:
        path = ".".join(str(p) for p in err.path) or "<root>"
        raise SchemaError(f"{_describe(obj)}: {path}: {err.message} (kubernetes {K8S_VERSION}, strict)") from None
    except kubernetes_validate.SchemaNotFoundError as err:
        raise SchemaError(f"{_describe(obj)}: no schema for {key[0]} {key[1]}: {err}") from None
    return f"kubernetes {K8S_VERSION} (kubernetes-validate, strict)"


def validate_all(objs: list[dict[str, Any]]) -> list[str]:
    return [validate(o) for o in objs]
