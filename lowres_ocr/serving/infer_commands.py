"""``lowres-ocr infer --url HOST:PORT [--protocol http|grpc] IMAGE...`` (a single command, registered by cli.py).

One request per image, so a bad image reports its own error and the others still print; exit code 1 if
any image failed.
"""

from __future__ import annotations

from pathlib import Path

import typer


def app(
    images: list[Path] = typer.Argument(..., exists=True, dir_okay=False, help="image files (PNG, JPEG, ...)"),
    url: str = typer.Option("127.0.0.1:8000", "--url", help="HOST:PORT of the HTTP (default 8000) or gRPC (8001) endpoint"),
    protocol: str = typer.Option("http", "--protocol", help="http or grpc"),
    model: str = typer.Option("lowres_ocr", "--model", help="ensemble name"),
) -> None:
    """Recognize IMAGE... on a Triton server; prints `path<TAB>text<TAB>confidence` per image."""
    from tritonclient.utils import InferenceServerException

    from lowres_ocr.serving.client import OcrClient

    if protocol not in ("http", "grpc"):
        typer.echo(f"error: --protocol must be http or grpc, got {protocol!r}", err=True)
        raise typer.Exit(2)
    failed = 0
    with OcrClient(url, protocol, model) as client:  # type: ignore[arg-type]
        for path in images:
            try:
                pred = client.predict(path.read_bytes())
            except InferenceServerException as err:
                failed += 1
                typer.echo(f"{path}\tERROR\t{err.status()}: {err.message()}", err=True)
                continue
            typer.echo(f"{path}\t{pred.text}\t{pred.confidence:.4f}")
    if failed:
        raise typer.Exit(1)
