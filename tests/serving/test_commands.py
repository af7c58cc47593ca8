"""``lowres-ocr serve start`` signal handling, with a stand-in for tritonserver (no binary needed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from typer.testing import CliRunner

from lowres_ocr.serving import server as server_module
from lowres_ocr.serving.commands import app


class _SignalledDuringStart:
    """Stands in for TritonServer: SIGTERM reaches this process while it starts (as when a supervisor stops it
    right after launch); then it stays up until stopped."""

    instances: list["_SignalledDuringStart"] = []

    def __init__(self, repo, **kwargs):
        self.process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        self.http_url, self.grpc_url = "127.0.0.1:1", "127.0.0.1:2"
        self.stopped = False
        self.instances.append(self)

    def start(self) -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    def stop(self) -> int:
        self.process.kill()
        self.process.wait()
        self.stopped = True
        return 0

    def log_tail(self) -> str:
        return ""


def _unhandled(*_):
    raise RuntimeError("SIGTERM reached the handler from before `serve start`: the process would have died")


def test_sigterm_during_start_up_still_stops_the_server_cleanly(tmp_path, monkeypatch):
    monkeypatch.setattr(server_module, "TritonServer", _SignalledDuringStart)
    previous = signal.signal(signal.SIGTERM, _unhandled)  # stands in for the default action (terminate)
    try:
        result = CliRunner().invoke(app, ["start", "--repo", str(tmp_path)])
        assert signal.getsignal(signal.SIGTERM) is _unhandled  # serve start restored what it found
    finally:
        signal.signal(signal.SIGTERM, previous)
        for stand_in in _SignalledDuringStart.instances:
            if stand_in.process.poll() is None:
                stand_in.process.kill()
                stand_in.process.wait()
    assert result.exit_code == 0, f"{result.output}{result.exception!r}"
    assert "stopped (rc=0)" in result.output and _SignalledDuringStart.instances[-1].stopped
