"""A local HTTP server on 127.0.0.1 that plays the Kubernetes API server for the cluster code's tests.

It records every request (method, path, query, content type, body), validates every object it stores with
the same schemas as production (``lowres_ocr.cluster.schemas``; an invalid body gets 422 like a real server),
keeps the objects it was given, and answers watches from a per-object script of status updates.

PATCH takes a JSON merge patch (RFC 7386; a strategic merge patch is merged the same way, so lists are
replaced: enough for the objects here) or a server-side apply (``application/apply-patch+yaml``, with a
required ``fieldManager``): apply creates the object when it is missing (201) and otherwise makes the applied
configuration the object's content, so a field left out of it is gone, as for a real server where one
manager owns every field it applied. A non-forced apply by another manager than the object's gets 409.

With ``State.rules`` set (the rules of a Role), a request whose verb the rules do not grant gets 403; a
server-side apply that creates the object needs ``create`` as well as ``patch``, as upstream.
Every (group, resource, verb) checked is recorded in ``State.verbs``.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import yaml

from lowres_ocr.cluster import schemas

APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCHES = ("application/merge-patch+json", "application/strategic-merge-patch+json")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any = None
    content_type: str = ""


@dataclass
class State:
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)  # collection path + "/" + name -> object
    requests: list[Request] = field(default_factory=list)
    # object name -> list of status dicts sent one per watch event; the last one repeats while the watch lasts
    scripts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    pods: list[dict[str, Any]] = field(default_factory=list)
    logs: dict[str, str] = field(default_factory=dict)
    event_interval: float = 0.05
    deployment_ready_after: int = 1  # GETs of a deployment before it reports ready
    reads: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # called with each created object (plays the operator/controller, e.g. writes a checkpoint to a shared dir)
    on_create: Any = None
    rules: list[dict[str, Any]] | None = None  # a Role's rules; None grants everything
    verbs: set[tuple[str, str, str]] = field(default_factory=set)  # (group, resource, verb) of every request


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: maps merge recursively, null deletes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return json.loads(json.dumps(patch))
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def resource_of(path: str) -> tuple[str, str]:
    """(API group, resource[/subresource]) of a request path."""
    parts = path.strip("/").split("/")
    group = "" if parts[0] == "api" else parts[1]
    rest = parts[parts.index("namespaces") + 2:] if "namespaces" in parts else parts[(2 if group == "" else 3):]
    return group, "/".join([rest[0], *rest[2:3]])


def granted(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    return any(group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"] for r in rules)


def _split(path: str) -> tuple[str, str | None]:
    """("/apis/g/v/namespaces/ns/plural", "name" | None) for collection or item paths."""
    parts = path.rstrip("/").split("/")
    ns_at = parts.index("namespaces") if "namespaces" in parts else -1
    coll_len = ns_at + 3  # .../namespaces/<ns>/<plural>
    if len(parts) > coll_len:
        return "/".join(parts[:coll_len]), parts[coll_len]
    return "/".join(parts), None


class Handler(BaseHTTPRequestHandler):
    state: State
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, code: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _status(self, code: int, reason: str, message: str) -> None:
        self._send(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason,
                          "message": message, "code": code})

    def _record(self) -> Request:
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        content_type = self.headers.get("Content-Type", "")
        raw = self.rfile.read(length) if length else b""
        body = (yaml.safe_load(raw) if content_type == APPLY_PATCH else json.loads(raw)) if raw else None
        req = Request(self.command, url.path, parse_qs(url.query), body, content_type)
        with self.state.lock:
            self.state.requests.append(req)
        return req

    def _allowed(self, req: Request, verb: str) -> bool:
        """Records the request's verb; answers 403 (and False) when ``State.rules`` do not grant it."""
        group, resource = resource_of(req.path)
        with self.state.lock:
            self.state.verbs.add((group, resource, verb))
            rules = self.state.rules
        if rules is None or granted(rules, group, resource, verb):
            return True
        self._status(403, "Forbidden", f"cannot {verb} resource {resource!r} in API group {group!r}")
        return False

    def _validated(self, body: dict[str, Any]) -> bool:
        try:
            schemas.validate(body)
        except schemas.SchemaError as err:
            self._status(422, "Invalid", str(err))
            return False
        return True

    def do_POST(self) -> None:  # noqa: N802
        req = self._record()
        coll, _ = _split(req.path)
        if not self._allowed(req, "create") or not self._validated(req.body):
            return
        key = f"{coll}/{req.body['metadata']['name']}"
        with self.state.lock:
            exists = key in self.state.objects
        if exists:
            return self._status(409, "AlreadyExists", f"{key} already exists")
        self._create(key, json.loads(json.dumps(req.body)))

    def _create(self, key: str, obj: dict[str, Any]) -> None:
        """Store a new object with the server's metadata, tell ``on_create``, answer 201."""
        with self.state.lock:
            obj["metadata"].update(uid=f"uid-{len(self.state.objects)}", generation=1, resourceVersion="1")
            self.state.objects[key] = obj
        if self.state.on_create is not None:
            self.state.on_create(obj)
        self._send(201, obj)

    def _begin(self, verb: str) -> tuple[Request, str, str | None] | None:
        """Record the request; (request, collection, name) when ``verb`` is allowed on it, else None (403 sent)."""
        req = self._record()
        coll, name = _split(req.path)
        return (req, coll, name) if self._allowed(req, verb) else None

    def do_PATCH(self) -> None:  # noqa: N802
        if (begun := self._begin("patch")) is None:
            return
        req, coll, name = begun
        if req.content_type == APPLY_PATCH:
            return self._apply(req, f"{coll}/{name}", name or "")
        if req.content_type not in MERGE_PATCHES:
            return self._status(415, "UnsupportedMediaType", req.content_type)
        key = f"{coll}/{name}"
        with self.state.lock:
            current = self.state.objects.get(key)
        if current is None:
            return self._status(404, "NotFound", key)
        obj = merge_patch(current, req.body)
        if not self._validated(obj):
            return
        self._store(key, obj, current)
        self._send(200, obj)

    def _store(self, key: str, obj: dict[str, Any], current: dict[str, Any]) -> None:
        """Replace ``current`` by ``obj`` keeping the server's metadata; a new spec bumps the generation."""
        meta = current["metadata"]
        obj["metadata"].update(uid=meta["uid"], resourceVersion=str(int(meta["resourceVersion"]) + 1),
                               generation=meta["generation"] + (obj.get("spec") != current.get("spec")))
        if "status" in current:
            obj["status"] = current["status"]
        with self.state.lock:
            self.state.objects[key] = obj

    def _apply(self, req: Request, key: str, name: str) -> None:
        """Server-side apply: create when missing, else the applied configuration becomes the object."""
        manager = req.query.get("fieldManager", [""])[0]
        if not manager:
            return self._status(400, "BadRequest", "fieldManager: Required value: is required for apply patch")
        if (req.body or {}).get("metadata", {}).get("name") != name:
            return self._status(400, "BadRequest", f"the name of the object does not match the name on the URL ({name})")
        if not self._validated(req.body):
            return
        obj = json.loads(json.dumps(req.body))
        obj["metadata"]["managedFields"] = [{"manager": manager, "operation": "Apply"}]
        with self.state.lock:
            current = self.state.objects.get(key)
        if current is None:
            if self._allowed(req, "create"):
                self._create(key, obj)
            return None
        owner = current["metadata"].get("managedFields", [{}])[0].get("manager")
        if owner != manager and req.query.get("force", [""])[0] != "true":
            return self._status(409, "Conflict", f"Apply failed with 1 conflict: fields owned by {owner!r}")
        self._store(key, obj, current)
        self._send(200, obj)

    def do_DELETE(self) -> None:  # noqa: N802
        if (begun := self._begin("delete")) is None:
            return
        _, coll, name = begun
        with self.state.lock:
            obj = self.state.objects.pop(f"{coll}/{name}", None)
        if obj is None:
            return self._status(404, "NotFound", name or "")
        self._send(200, {"kind": "Status", "status": "Success"})

    def do_GET(self) -> None:  # noqa: N802
        req = self._record()
        watching = req.query.get("watch", [""])[0].lower() == "true"
        if not self._allowed(req, "watch" if watching else "list" if _split(req.path)[1] is None else "get"):
            return
        if req.path.endswith("/log"):
            pod = req.path.split("/")[-2]
            text = self.state.logs.get(pod, "")
            tail = int(req.query.get("tailLines", ["0"])[0])
            text = "\n".join(text.splitlines()[-tail:]) if tail else text
            data = text.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        coll, name = _split(req.path)
        if coll.endswith("/pods") and name is None:
            sel = req.query.get("labelSelector", [""])[0]
            k, _, v = sel.partition("=")
            items = [p for p in self.state.pods if p["metadata"].get("labels", {}).get(k) == v]
            return self._send(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})
        if watching:
            return self._watch(coll, req)
        key = f"{coll}/{name}"
        with self.state.lock:
            obj = self.state.objects.get(key)
            if obj is None:
                return self._status(404, "NotFound", key)
            n = self.state.reads[key] = self.state.reads.get(key, 0) + 1
            obj = json.loads(json.dumps(obj))
        script = self.state.scripts.get(obj["metadata"]["name"])
        if script:
            obj["status"] = script[min(n - 1, len(script) - 1)]
        elif obj["kind"] == "Deployment" and n >= self.state.deployment_ready_after:
            r = obj["spec"]["replicas"]
            obj["status"] = {"observedGeneration": obj["metadata"]["generation"], "replicas": r, "readyReplicas": r,
                             "updatedReplicas": r, "availableReplicas": r}
        self._send(200, obj)

    def _watch(self, coll: str, req: Request) -> None:
        name = req.query.get("fieldSelector", [""])[0].partition("metadata.name=")[2]
        timeout = float(req.query.get("timeoutSeconds", ["5"])[0])
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        deadline = time.monotonic() + timeout
        script = self.state.scripts.get(name, [{}])
        i = 0
        try:
            while time.monotonic() < deadline:
                with self.state.lock:
                    obj = self.state.objects.get(f"{coll}/{name}")
                if obj is None:
                    break
                obj = dict(obj, status=script[min(i, len(script) - 1)])
                line = json.dumps({"type": "ADDED" if i == 0 else "MODIFIED", "object": obj}).encode() + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()
                i += 1
                time.sleep(self.state.event_interval)
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass


class FakeApiServer:
    def __init__(self) -> None:
        self.state = State()
        handler = type("BoundHandler", (Handler,), {"state": self.state})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> "FakeApiServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

    def calls(self, method: str | None = None) -> list[Request]:
        with self.state.lock:
            return [r for r in self.state.requests if method is None or r.method == method]
