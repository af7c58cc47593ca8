"""Process-group setup from the torchrun / Kubeflow operator environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_*)."""

from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist


def setup_distributed() -> tuple[int, int, int, torch.device]:
    """(rank, world size, local rank, device): NCCL on GPU, gloo on CPU; a process group only when world > 1."""
    rank = int(os.environ.get("RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device = torch.device("cpu")
        # an explicit OMP_NUM_THREADS wins (e.g. two single-process runs sharing the cores); else split the cores
        threads = os.environ.get("OMP_NUM_THREADS", "")
        torch.set_num_threads(int(threads) if threads.isdigit() and int(threads) > 0
                              else max(1, (os.cpu_count() or 1) // max(1, local_world)))
        backend = "gloo"
    if world > 1:
        store = _attempt_store(world)
        if store is None:
            dist.init_process_group(backend=backend)
        else:
            dist.init_process_group(backend=backend, store=store, rank=rank, world_size=world)
    return rank, world, local_rank, device


def _attempt_store(world: int) -> dist.Store | None:
    """Under torchrun's shared agent store: a client of it, prefixed by the restart attempt; else None (env://).

    torch's rendezvous keeps one TCPStore server across the restarts of ``--max-restarts`` while its env:// handler
    adds no per-attempt prefix, so a restarted rank read the previous attempt's gloo addresses and failed ("Gloo
    connectFullMesh failed ... Connection refused"). The prefix keeps each attempt's keys apart.
    """
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True" or "TORCHELASTIC_RESTART_COUNT" not in os.environ:
        return None
    client = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world, is_master=False,
                           timeout=timedelta(minutes=30))
    return dist.PrefixStore(f"lowres_ocr/attempt_{os.environ['TORCHELASTIC_RESTART_COUNT']}", client)


def all_any(flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on any rank."""
    if not dist.is_initialized():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t)
    return bool(t.item() > 0)
