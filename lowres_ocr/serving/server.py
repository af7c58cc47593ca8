"""Run the real ``tritonserver`` shipped in the nvidia-pytriton wheel (python backend only) on 127.0.0.1.

Follows ../shared/notes/triton-local.md: the backend directory holds symlinks to the wheel's python
backend and the stub for this interpreter's version; PATH starts with this interpreter's bin dir (the
stub takes its prefix from the ``python`` on PATH) and LD_LIBRARY_PATH with libpython's dir; the
ready-wait has a deadline because a stub that cannot start makes the server hang in loading forever;
stopping sends SIGTERM, waits, kills if needed, and removes the python backend's /dev/shm regions.
Clients must be closed before stopping (an open HTTP keep-alive connection delays exit).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType


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
        self.shm_prefix = f"lrocr_{os.getpid()}_{uuid.uuid4().hex[:8]}_"
        self.process: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def command(self, backend_dir: Path) -> list[str]:
        install = find_triton()
        return [
            str(install.binary),
            f"--model-repository={self.repo}",
            f"--backend-directory={backend_dir}",
            "--http-address=127.0.0.1", f"--http-port={self.http_port}",
            "--grpc-address=127.0.0.1", f"--grpc-port={self.grpc_port}",
            "--metrics-address=127.0.0.1", f"--metrics-port={self.metrics_port}",
            "--allow-metrics=false", "--allow-gpu-metrics=false",
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
        backend_dir = self._prepare()
        assert self.log_path is not None
        log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop via the process' lifetime)
        try:
            self.process = subprocess.Popen(
                self.command(backend_dir), stdout=log, stderr=subprocess.STDOUT, env=server_env(), start_new_session=True
            )
        finally:
            log.close()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

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
        for leftover in Path("/dev/shm").glob(f"{self.shm_prefix}*"):
            leftover.unlink(missing_ok=True)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        return self.returncode

    def __enter__(self) -> "TritonServer":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
