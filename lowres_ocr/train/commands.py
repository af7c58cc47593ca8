"""``lowres-ocr train``: launch ``torchrun -m lowres_ocr.train`` with the right process topology."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Optional

import typer

app = typer.Typer(add_completion=False, invoke_without_command=True, no_args_is_help=False)


def torchrun_command(config: str, nproc_per_node: int, nnodes: int = 1, node_rank: Optional[int] = None,
                     master: Optional[str] = None, overrides: Optional[list[str]] = None, output_dir: Optional[str] = None) -> list[str]:
    """The torchrun argv used locally and inside PyTorchJob / TrainJob pods.

    Single node → ``--standalone`` through :mod:`lowres_ocr.train.launch` (torchrun with its stores on 127.0.0.1);
    several nodes → plain torchrun, rendezvous at ``master`` (host:port) or, when the operator set them, the PET_* /
    MASTER_ADDR environment that torchrun reads itself.
    """
    launcher = "lowres_ocr.train.launch" if nnodes == 1 else "torch.distributed.run"
    cmd = [sys.executable, "-m", launcher, "--nproc-per-node", str(nproc_per_node)]
    if nnodes == 1:
        cmd.append("--standalone")
    else:
        cmd += ["--nnodes", str(nnodes)]
        if node_rank is not None:
            cmd += ["--node-rank", str(node_rank)]
        if master:
            cmd += ["--rdzv-backend", "c10d", "--rdzv-endpoint", master]
    cmd += ["-m", "lowres_ocr.train", "--config", config]
    for o in overrides or []:
        cmd += ["--set", o]
    if output_dir:
        cmd += ["--output-dir", output_dir]
    return cmd


@app.callback()
def train(
    config: str = typer.Option("default", help="YAML file or preset name (lowres_ocr/train/configs: small, default, gpu, ...)"),
    nproc_per_node: int = typer.Option(2, "--nproc-per-node", help="processes (CPU workers or GPUs) per node"),
    nnodes: int = typer.Option(1, help="number of nodes"),
    node_rank: Optional[int] = typer.Option(None, help="this node's rank (multi-node)"),
    master: Optional[str] = typer.Option(None, help="rendezvous endpoint host:port (multi-node)"),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="config override key.sub=value, value as YAML (repeatable)"),
    output_dir: Optional[str] = typer.Option(None, help="checkpoints and metrics.jsonl go here"),
    dry_run: bool = typer.Option(False, help="print the torchrun command and exit"),
) -> None:
    """Train (or resume: the same command continues from <output_dir>/last.pt)."""
    from lowres_ocr.train.config import ConfigError, load_config

    try:  # here, before torchrun starts or any output folder exists: a bad key fails once, with its name
        load_config(config, set_, output_dir)
    except (ConfigError, FileNotFoundError) as err:
        typer.echo(f"lowres-ocr train: {err}", err=True)
        raise typer.Exit(2) from None
    cmd = torchrun_command(config, nproc_per_node, nnodes, node_rank, master, set_, output_dir)
    if dry_run:
        typer.echo(" ".join(cmd))
        raise typer.Exit(0)
    raise typer.Exit(subprocess.call(cmd, env=os.environ.copy()))
