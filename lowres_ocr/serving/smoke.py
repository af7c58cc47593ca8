"""Smoke test of a deployed ``lowres_ocr`` ensemble over HTTP and gRPC (the pipeline's last step).

For each protocol: every image is recognized (optionally equal to ``expected`` texts), a non-image is
refused with a client error (HTTP 400 / gRPC INVALID_ARGUMENT), and a good request right after succeeds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from lowres_ocr.serving.client import OcrClient

CLIENT_ERROR = {"http": "400", "grpc": "StatusCode.INVALID_ARGUMENT"}


@dataclass
class ProtocolResult:
    protocol: str
    url: str
    predicted: int = 0
    matched: int | None = None
    bad_input_status: str = ""
    recovered: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.errors


@dataclass
class SmokeReport:
    results: list[ProtocolResult]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "protocols": [dict(asdict(r), passed=r.passed) for r in self.results]}


def run_protocol(protocol: str, url: str, open_client: Callable[[str, str], Any],
                 body: Callable[[Any, ProtocolResult], None]) -> ProtocolResult:
    """Open a client on ``url`` and run ``body(client, result)``; a server or connection error becomes an error line."""
    from tritonclient.utils import InferenceServerException

    res = ProtocolResult(protocol, url)
    try:
        with open_client(url, protocol) as client:
            body(client, res)
    except (InferenceServerException, ConnectionError, OSError) as err:
        res.errors.append(f"{type(err).__name__}: {err}")
    return res


def refuse_and_recover(res: ProtocolResult, ask: Callable[[bytes], Any], good: bytes, good_answer: Any) -> None:
    """A non-image must be refused with the protocol's client error, then ``ask(good)`` must give ``good_answer``."""
    from tritonclient.utils import InferenceServerException

    try:
        ask(b"not an image")
        res.errors.append("a non-image was accepted")
    except InferenceServerException as err:
        res.bad_input_status = str(err.status())
        if res.bad_input_status != CLIENT_ERROR[res.protocol]:
            res.errors.append(f"a non-image gave status {res.bad_input_status}, expected {CLIENT_ERROR[res.protocol]}")
    res.recovered = ask(good) == good_answer
    if not res.recovered:
        res.errors.append("the request after the bad one did not return the same answer")


def targets(http_url: str | None, grpc_url: str | None) -> list[tuple[str, str]]:
    """(protocol, HOST:PORT) for each URL given; ValueError when there is none."""
    found = [(p, u) for p, u in (("http", http_url), ("grpc", grpc_url)) if u]
    if not found:
        raise ValueError("give an HTTP and/or a gRPC URL")
    return found


def _crops(images: list[bytes], expected: list[str] | None) -> Callable[[OcrClient, ProtocolResult], None]:
    def body(client: OcrClient, res: ProtocolResult) -> None:
        texts = [client.predict(img).text for img in images]
        res.predicted = len(texts)
        if expected is not None:
            res.matched = sum(a == b for a, b in zip(texts, expected))
            if res.matched != len(expected):
                res.errors.append(f"{len(expected) - res.matched} of {len(expected)} predictions differ from the expected texts")
        refuse_and_recover(res, lambda data: client.predict(data).text, images[0], texts[0])

    return body


def smoke_test(http_url: str | None, grpc_url: str | None, images: list[bytes], expected: list[str] | None = None) -> SmokeReport:
    """Check the ensemble at ``http_url`` and/or ``grpc_url`` (HOST:PORT) with ``images`` (encoded bytes)."""
    if not images:
        raise ValueError("smoke_test needs at least one image")
    if expected is not None and len(expected) != len(images):
        raise ValueError("expected texts must match the images one to one")
    return SmokeReport([run_protocol(p, u, OcrClient, _crops(images, expected)) for p, u in targets(http_url, grpc_url)])
