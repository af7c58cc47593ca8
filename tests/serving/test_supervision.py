"""``lowres-ocr serve start`` supervises tritonserver: a ``kill -9`` under load is followed by a restart.

The real-process test starts ``serve start`` on 127.0.0.1 free ports, keeps three client threads (HTTP and
gRPC) sending real crops, kills the tritonserver child with SIGKILL, and checks that requests succeed again
within ``RECOVERY_BOUND_S``, that failures happened only between the kill and the recovery, and that SIGTERM
afterwards stops everything (no process of either server's group left, no /dev/shm regions left).
The restart bound is checked on ``Supervisor`` with a stand-in server (no process).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lowres_ocr.serving.client import OcrClient
from lowres_ocr.serving.server import GaveUp, RestartPolicy, Supervisor, _pgid, _proc_pids, free_port

pytestmark = pytest.mark.integration

#: seconds from the kill to the first successful request started after it (2 shared cores, server start included)
RECOVERY_BOUND_S = 60.0


@dataclass
class Outcome:
    start: float
    end: float
    ok: bool


@dataclass
class Load:
    """Client threads sending one crop per request until ``stop`` is set; every request's outcome is kept."""

    urls: list[tuple[str, str]]
    crops: list[bytes]
    stop: threading.Event = field(default_factory=threading.Event)
    outcomes: list[Outcome] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    def worker(self, url: str, protocol: str) -> None:
        client = OcrClient(url, protocol, timeout=20.0)  # type: ignore[arg-type]
        i = 0
        while not self.stop.is_set():
            start = time.monotonic()
            try:
                client.predict(self.crops[i % len(self.crops)])
                self.outcomes.append(Outcome(start, time.monotonic(), True))
            except Exception:  # noqa: BLE001 (a dead server fails in many ways; each failure is recorded)
                self.outcomes.append(Outcome(start, time.monotonic(), False))
                client.close()
                time.sleep(0.1)
                client = OcrClient(url, protocol, timeout=20.0)  # type: ignore[arg-type]
            i += 1
        client.close()

    def __enter__(self) -> "Load":
        self.threads = [threading.Thread(target=self.worker, args=u, daemon=True) for u in self.urls]
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def successes_after(self, t: float) -> int:
        return sum(1 for o in list(self.outcomes) if o.ok and o.start > t)


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _group_alive(pgid: int) -> list[int]:
    return [pid for pid in _proc_pids() if _pgid(pid) == pgid]


def _read_lines(proc: subprocess.Popen[str], lines: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)


def _pid_in(lines: list[str], pattern: str) -> int | None:
    for line in list(lines):
        m = re.search(pattern, line)
        if m:
            return int(m.group(1))
    return None


def test_kill_9_under_load_is_restarted_and_sigterm_stops_all(local_repo: Path, served_model) -> None:
    http, grpc, metrics = free_port(), free_port(), free_port()
    cmd = [sys.executable, "-m", "lowres_ocr.cli", "serve", "start", "--repo", str(local_repo), "--http-port", str(http),
           "--grpc-port", str(grpc), "--metrics-port", str(metrics), "--ready-timeout", "120"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    threading.Thread(target=_read_lines, args=(proc, lines), daemon=True).start()
    groups: list[int] = []
    try:
        _wait_for(lambda: _pid_in(lines, r"ready: .*\(pid (\d+)\)") is not None, 120, "the ready line")
        first = _pid_in(lines, r"ready: .*\(pid (\d+)\)")
        groups.append(first)
        crops = [data for _, data in served_model.crops[:20]]
        urls = [(f"127.0.0.1:{http}", "http"), (f"127.0.0.1:{grpc}", "grpc"), (f"127.0.0.1:{grpc}", "grpc")]
        with Load(urls, crops) as load:
            _wait_for(lambda: load.successes_after(0) >= 10, 30, "requests before the kill")
            killed_at = time.monotonic()
            os.kill(first, signal.SIGKILL)
            _wait_for(lambda: load.successes_after(killed_at) >= 1, RECOVERY_BOUND_S, "a success after the kill")
            back_at = min(o.end for o in load.outcomes if o.ok and o.start > killed_at)
            _wait_for(lambda: load.successes_after(back_at) >= 10, 30, "requests after the restart")
        second = _pid_in(lines, r"restarted: pid (\d+)")
        assert second is not None and second != first, "".join(lines)
        groups.append(second)
        failures = [o for o in load.outcomes if not o.ok]
        print(f"\nkill -9 → first success {back_at - killed_at:.1f} s later; {len(failures)} failed requests, "
              f"{len(load.outcomes) - len(failures)} succeeded")
        assert back_at - killed_at < RECOVERY_BOUND_S
        assert all(o.end >= killed_at and o.start <= back_at for o in failures), "a failure outside the kill window"
        assert not _group_alive(first), "the killed server's backend stubs are still running"
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pgid in groups:
            if _group_alive(pgid):
                os.killpg(pgid, signal.SIGKILL)
    out = "".join(lines)
    assert proc.returncode == 0, out
    assert "died unexpectedly (rc=-9); restarting (1/3 within 60 s)" in out and "stopped (rc=0)" in out, out
    assert not any(_group_alive(g) for g in groups), "a tritonserver or backend stub outlived serve start"
    assert not [f for f in os.listdir("/dev/shm") if f.startswith(f"lrocr_{proc.pid}_")]


class _DeadProcess:
    pid = 4242
    returncode = -9

    def poll(self) -> int:
        return self.returncode


class _AlwaysDyingServer:
    """Stands in for TritonServer: its process is always dead, each restart is counted."""

    def __init__(self) -> None:
        self.process = _DeadProcess()
        self.restarts = 0

    def restart(self) -> None:
        self.restarts += 1


def test_supervisor_gives_up_after_the_allowed_restarts() -> None:
    server, said = _AlwaysDyingServer(), []
    supervisor = Supervisor(server, RestartPolicy(max_restarts=3, window_s=60), said.append, poll_s=0.001)  # type: ignore[arg-type]
    with pytest.raises(GaveUp, match="after 3 restarts within 60 s: giving up"):
        supervisor.run(threading.Event())
    assert server.restarts == 3
    assert sum("died unexpectedly" in line for line in said) == 3


def test_supervisor_forgets_restarts_older_than_the_window() -> None:
    server, said = _AlwaysDyingServer(), []
    supervisor = Supervisor(server, RestartPolicy(max_restarts=1, window_s=10), said.append)  # type: ignore[arg-type]
    for t in (0.0, 11.0, 22.0):  # one death every 11 s: never two within 10 s
        supervisor._restart(4242, -9, t)
    assert server.restarts == 3
    with pytest.raises(GaveUp):
        supervisor._restart(4242, -9, 25.0)
