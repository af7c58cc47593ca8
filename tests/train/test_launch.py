"""``lowres_ocr.train.launch``: torchrun on one machine whose stores listen on 127.0.0.1 only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil

from lowres_ocr.train.launch import LoopbackTCPStore

JOB = textwrap.dedent("""
    import json, os, sys
    import psutil, torch, torch.distributed as dist
    from lowres_ocr.train.distributed import setup_distributed
    rank, world, _, _ = setup_distributed()
    total = torch.ones(1) * (rank + 1)
    dist.all_reduce(total)
    if rank == 0:  # every listening socket of the launcher's process tree, while the group is up
        agent = psutil.Process(os.getppid())
        tree = [agent, *agent.children(recursive=True)]
        listening = sorted({c.laddr.ip for p in tree for c in p.net_connections("tcp") if c.status == psutil.CONN_LISTEN})
        json.dump({"sum": total.item(), "listening": listening, "master": os.environ["MASTER_ADDR"]}, open(sys.argv[1], "w"))
    dist.barrier()
    dist.destroy_process_group()
""")


def test_two_processes_meet_on_loopback_only(tmp_path: Path):
    job, report = tmp_path / "job.py", tmp_path / "report.json"
    job.write_text(JOB)
    cmd = [sys.executable, "-m", "lowres_ocr.train.launch", "--nproc-per-node", "2", "--standalone", str(job), str(report)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(report.read_text())
    assert seen["sum"] == 3.0 and seen["master"] == "127.0.0.1"
    # the rendezvous store, the workers' store and gloo: all of them, and nothing on 0.0.0.0 / ::
    assert seen["listening"] == ["127.0.0.1"], seen["listening"]


def test_server_store_listens_on_loopback_and_serves_clients():
    server = LoopbackTCPStore("localhost", 0, 1, is_master=True)
    try:
        port = server.port
        listening = [c for c in psutil.Process().net_connections("tcp")
                     if c.status == psutil.CONN_LISTEN and c.laddr.port == port]
        assert [c.laddr.ip for c in listening] == ["127.0.0.1"]
        client = LoopbackTCPStore("127.0.0.1", port, 1, is_master=False)
        server.set("key", "value")
        assert client.get("key") == b"value"
    finally:
        del server
