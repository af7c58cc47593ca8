"""``python -m lowres_ocr.train.launch ARGS``: torchrun for one machine whose stores listen on 127.0.0.1 only.

torchrun's agent hosts two TCPStore servers (the c10d rendezvous store and the workers' store). ``TCPStore``
ignores its host name when it binds and listens on every interface, so a local training run would expose an
unauthenticated key-value store to the network. Here every *server* store of the agent process is handed a socket
already bound to 127.0.0.1 (``master_listen_fd``) and the rendezvous runs at ``127.0.0.1``; the workers are clients.
Multi-node runs (PyTorchJob / TrainJob pods) keep plain torchrun: their stores must be reachable from the other nodes.
"""

from __future__ import annotations

import socket
import sys
from datetime import timedelta

import torch.distributed as dist

LOOPBACK = "127.0.0.1"


def loopback_socket(port: int) -> socket.socket:
    """A listening TCP socket on 127.0.0.1:``port`` (0: any free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, port))
    sock.listen(socket.SOMAXCONN)
    return sock


class LoopbackTCPStore(dist.TCPStore):
    """``TCPStore`` whose server side listens on 127.0.0.1 only (clients are unchanged)."""

    def __init__(self, host_name: str, port: int, world_size: int | None = None, is_master: bool = False,
                 timeout: timedelta = timedelta(seconds=300), wait_for_workers: bool = True,
                 multi_tenant: bool = False, master_listen_fd: int | None = None, use_libuv: bool = True) -> None:
        sock = None
        if is_master and master_listen_fd is None:
            sock = loopback_socket(port)
            port, master_listen_fd, host_name = sock.getsockname()[1], sock.fileno(), LOOPBACK
        super().__init__(host_name, port, world_size, is_master, timeout, wait_for_workers, multi_tenant,
                         master_listen_fd, use_libuv)
        self._listen_socket = sock  # the store serves on this socket's descriptor: keep it open as long as the store


def install() -> None:
    """Make the torch.distributed modules of this process create :class:`LoopbackTCPStore` servers."""
    from torch.distributed.elastic.rendezvous import c10d_rendezvous_backend

    dist.TCPStore = LoopbackTCPStore
    c10d_rendezvous_backend.TCPStore = LoopbackTCPStore


def main(argv: list[str] | None = None) -> None:
    """torchrun ``argv`` (``--standalone`` or not) with the rendezvous and worker stores on 127.0.0.1."""
    from torch.distributed.run import main as torchrun_main

    args = list(sys.argv[1:] if argv is None else argv)
    if "--standalone" in args:  # torchrun would rendezvous at localhost:0; the same, on the loopback address
        args.remove("--standalone")
        args = ["--rdzv-backend", "c10d", "--rdzv-endpoint", f"{LOOPBACK}:0", "--local-addr", LOOPBACK, *args]
    install()
    torchrun_main(args)


if __name__ == "__main__":
    main()
