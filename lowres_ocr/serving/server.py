"""Run the real ``tritonserver`` shipped in the nvidia-pytriton wheel (python backend only) on 127.0.0.1.

Follows ../shared/notes/triton-local.md: the backend directory holds symlinks to the wheel's python
backend and the stub for this interpreter's version; PATH starts with this interpreter's bin dir (the
stub takes its prefix from the ``python`` on PATH) and LD_LIBRARY_PATH with libpython's dir; the
ready-wait has a deadline because a stub that cannot start makes the server hang in loading forever;
stopping sends SIGTERM, waits, kills if needed, and removes the python backend's /dev/shm regions.
Clients must be closed before stopping (an open HTTP keep-alive connection delays exit).
``metrics=True`` turns on Triton's Prometheus endpoint (``metrics_url``, 127.0.0.1 only; GPU/CPU metrics off).
``restart()`` relaunches a server whose process died (kills the dead one's leftover backend stubs first);
``Supervisor`` uses it to keep a server up within a bounded number of restarts.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Callable


class TritonNotAvailable(RuntimeError):
    """The tritonserver binary (nvidia-pytriton wheel) or the python backend stub is missing."""


class TritonStartError(RuntimeError):
    """The server exited or did not become ready before the deadline (message ends with its log tail)."""


@dataclass(frozen=True)
class TritonInstall:
    binary: Path
    backend_files: tuple[Path, ...]


def find_triton() -> TritonInstall:
    """Locate the wheel's server binary, python backend library/utils and the stub for this Python."""
    root = Path(sysconfig.get_paths()["purelib"]) / "pytriton" / "tritonserver"
    version = "%d.%d" % sys.version_info[:2]
    binary = root / "bin" / "tritonserver"
    files = (
        root / "backends" / "python" / "libtriton_python.so",
        root / "backends" / "python" / "triton_python_backend_utils.py",
        root / "python_backend_stubs" / version / "triton_python_backend_stub",
    )
    missing = [str(p) for p in (binary, *files) if not p.exists()]
    if missing:
        raise TritonNotAvailable(f"tritonserver not found (install nvidia-pytriton==0.7.0): missing {', '.join(missing)}")
    return TritonInstall(binary, files)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    libdir = sysconfig.get_config_var("LIBDIR")
    if libdir:
        env["LD_LIBRARY_PATH"] = libdir + (os.pathsep + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    return env


class TritonServer:
    """``with TritonServer(repo) as server: server.http_url ...`` — starts, waits until ready, stops on exit."""

    def __init__(
        self,
        repo: Path,
        *,
        http_port: int | None = None,
        grpc_port: int | None = None,
        metrics_port: int | None = None,
        ready_timeout: float = 90.0,
        exit_timeout: int = 10,
        workdir: Path | None = None,
        log_path: Path | None = None,
        metrics: bool = False,
    ) -> None:
        self.repo = Path(repo).resolve()
        self.http_port = http_port or free_port()
        self.grpc_port = grpc_port or free_port()
        self.metrics_port = metrics_port or free_port()
        self.ready_timeout = ready_timeout
        self.exit_timeout = exit_timeout
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.workdir = workdir
        self.log_path = log_path
        self.metrics = metrics
        self.shm_prefix = self._new_shm_prefix()
        self.restarts = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        """Prometheus text endpoint (answers only when started with ``metrics=True``)."""
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @staticmethod
    def _new_shm_prefix() -> str:
        return f"lrocr_{os.getpid()}_{uuid.uuid4().hex[:8]}_"

    def command(self, backend_dir: Path) -> list[str]:
        install = find_triton()
        return [
            str(install.binary),
            f"--model-repository={self.repo}",
            f"--backend-directory={backend_dir}",
            "--http-address=127.0.0.1", f"--http-port={self.http_port}",
            "--grpc-address=127.0.0.1", f"--grpc-port={self.grpc_port}",
            "--metrics-address=127.0.0.1", f"--metrics-port={self.metrics_port}",
            f"--allow-metrics={'true' if self.metrics else 'false'}", "--allow-gpu-metrics=false",
            "--allow-cpu-metrics=false",
            "--pinned-memory-pool-byte-size=0", "--cuda-memory-pool-byte-size=0:0",
            f"--backend-config=python,shm-region-prefix-name={self.shm_prefix}",
            f"--exit-timeout-secs={self.exit_timeout}",
        ]

    def _prepare(self) -> Path:
        if self.workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="lowres_ocr_triton_")
            self.workdir = Path(self._tmp.name)
        backend_dir = self.workdir / "backends"
        python_dir = backend_dir / "python"
        python_dir.mkdir(parents=True, exist_ok=True)
        for src in find_triton().backend_files:
            link = python_dir / src.name
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(src)
        if self.log_path is None:
            self.log_path = self.workdir / "tritonserver.log"
        return backend_dir

    def start(self) -> "TritonServer":
        if not (self.repo / "lowres_ocr").is_dir() and not any(self.repo.glob("*/config.pbtxt")):
            raise TritonStartError(f"{self.repo}: not a model repository (no */config.pbtxt)")
        self._launch(self._prepare(), "wb")
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _launch(self, backend_dir: Path, log_mode: str) -> None:
        """Start the process in its own session (its group id is its pid: the backend stubs share it)."""
        assert self.log_path is not None
        log = open(self.log_path, log_mode)  # noqa: SIM115 (the child holds its own copy of the descriptor)
        try:
            self.process = subprocess.Popen(
                self.command(backend_dir), stdout=log, stderr=subprocess.STDOUT, env=server_env(), start_new_session=True
            )
        finally:
            log.close()

    def _clear_dead(self) -> None:
        """After the server process died: SIGKILL what is left of its process group (backend stubs), drop its shm."""
        assert self.process is not None
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._remove_shm()

    def _remove_shm(self) -> None:
        for leftover in Path("/dev/shm").glob(f"{self.shm_prefix}*"):
            leftover.unlink(missing_ok=True)

    def restart(self) -> "TritonServer":
        """Relaunch a server whose process has exited (same ports, log appended, fresh shm prefix); waits until ready."""
        if self.process is None or self.process.poll() is None:
            raise RuntimeError("restart() is for a server whose process has exited")
        self._clear_dead()
        self.shm_prefix = self._new_shm_prefix()
        assert self.workdir is not None
        self._launch(self.workdir / "backends", "ab")
        self.restarts += 1
        self.wait_ready()
        return self

    def group_pids(self) -> list[int]:
        """Pids of the server's process group: tritonserver and its python backend stubs (read from /proc)."""
        if self.process is None:
            return []
        return [pid for pid in _proc_pids() if _pgid(pid) == self.process.pid]

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.http_url}/v2/health/ready", timeout=2) as resp:
                return resp.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return False

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise TritonStartError(f"tritonserver exited with rc={self.process.returncode}:\n{self.log_tail()}")
            if self.is_ready():
                return
            time.sleep(0.2)
        raise TritonStartError(f"tritonserver not ready after {self.ready_timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> int | None:
        """SIGTERM, wait up to exit_timeout + 10 s, then SIGKILL; removes this server's /dev/shm regions."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.exit_timeout + 10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        if proc is not None:
            self.returncode = proc.returncode
            self._clear_dead()
        self._remove_shm()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        return self.returncode

    def __enter__(self) -> "TritonServer":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def _proc_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _pgid(pid: int) -> int | None:
    """Process group id from /proc/PID/stat (None when the process is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[2])


@dataclass(frozen=True)
class RestartPolicy:
    """At most ``max_restarts`` restarts within any ``window_s`` seconds; one more death gives up."""

    max_restarts: int = 3
    window_s: float = 60.0


class GaveUp(RuntimeError):
    """The server died more often than the restart policy allows."""


class Supervisor:
    """Watch a started ``TritonServer`` until ``stop`` is set; restart it when its process dies unexpectedly.

    ``run`` returns when ``stop`` is set and raises ``GaveUp`` after ``max_restarts`` restarts within ``window_s``
    (or a restart that does not become ready). ``say`` receives one line per death and per restart.
    """

    def __init__(self, server: TritonServer, policy: RestartPolicy, say: Callable[[str], None], poll_s: float = 0.2) -> None:
        self.server = server
        self.policy = policy
        self.say = say
        self.poll_s = poll_s
        self._recent: deque[float] = deque()

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.poll_s):
            proc = self.server.process
            if proc is None or proc.poll() is None:
                continue
            self._restart(proc.pid, proc.returncode, time.monotonic())

    def _restart(self, pid: int, rc: int | None, died_at: float) -> None:
        while self._recent and died_at - self._recent[0] > self.policy.window_s:
            self._recent.popleft()
        if len(self._recent) >= self.policy.max_restarts:
            raise GaveUp(f"tritonserver (pid {pid}) died (rc={rc}) after {len(self._recent)} restarts within "
                         f"{self.policy.window_s:.0f} s: giving up")
        self._recent.append(died_at)
        self.say(f"tritonserver (pid {pid}) died unexpectedly (rc={rc}); restarting "
                 f"({len(self._recent)}/{self.policy.max_restarts} within {self.policy.window_s:.0f} s)")
        try:
            self.server.restart()
        except TritonStartError as err:
            raise GaveUp(f"restart failed: {err}") from None
        assert self.server.process is not None
        self.say(f"tritonserver restarted: pid {self.server.process.pid}, ready "
                 f"{time.monotonic() - died_at:.1f} s after the death was seen")
