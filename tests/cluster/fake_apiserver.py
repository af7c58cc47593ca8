"""A local HTTP server on 127.0.0.1 that plays the Kubernetes API server for the cluster code's tests.

It records every request (method, path, query, JSON body), validates every body sent to it with the same
schemas as production (``lowres_ocr.cluster.schemas``; an invalid body gets 422 like a real server), keeps
the objects it was given, and answers watches from a per-object script of status updates.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from lowres_ocr.cluster import schemas


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any = None


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
        body = json.loads(self.rfile.read(length)) if length else None
        req = Request(self.command, url.path, parse_qs(url.query), body)
        with self.state.lock:
            self.state.requests.append(req)
        return req

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
        if not self._validated(req.body):
            return
        key = f"{coll}/{req.body['metadata']['name']}"
        with self.state.lock:
            if key in self.state.objects:
                return self._status(409, "AlreadyExists", f"{key} already exists")
            obj = json.loads(json.dumps(req.body))
            obj["metadata"].update(uid=f"uid-{len(self.state.objects)}", generation=1, resourceVersion="1")
            self.state.objects[key] = obj
        if self.state.on_create is not None:
            self.state.on_create(obj)
        self._send(201, obj)

    def do_PATCH(self) -> None:  # noqa: N802
        req = self._record()
        coll, name = _split(req.path)
        if self.headers.get("Content-Type") not in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            return self._status(415, "UnsupportedMediaType", self.headers.get("Content-Type", ""))
        if not self._validated(req.body):
            return
        key = f"{coll}/{name}"
        with self.state.lock:
            if key not in self.state.objects:
                return self._status(404, "NotFound", key)
            obj = self.state.objects[key]
            obj["spec"] = req.body.get("spec", obj.get("spec"))
            obj["metadata"]["generation"] += 1
        self._send(200, obj)

    def do_DELETE(self) -> None:  # noqa: N802
        req = self._record()
        coll, name = _split(req.path)
        with self.state.lock:
            obj = self.state.objects.pop(f"{coll}/{name}", None)
        if obj is None:
            return self._status(404, "NotFound", name or "")
        self._send(200, {"kind": "Status", "status": "Success"})

    def do_GET(self) -> None:  # noqa: N802
        req = self._record()
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
        if req.query.get("watch", [""])[0].lower() == "true":
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
