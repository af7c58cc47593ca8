"""The ``lowres-ocr`` command line: one sub-command group per pipeline stage.

Each stage module owns its own ``typer.Typer`` app; heavy imports stay inside the commands so that
``lowres-ocr --help`` is fast.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Low-resolution text recognition: data, training, evaluation, export, serving and the Kubeflow pipeline.")

# (group name, module holding a typer app called ``app``, help)
_GROUPS = [
    ("data", "lowres_ocr.data.commands", "Datasets: synthesis, LMDB building, inspection, DVC."),
    ("train", "lowres_ocr.train.commands", "Train the multi-task network (wraps torchrun)."),
    ("evaluate", "lowres_ocr.evaluation.commands", "Benchmark evaluation, reports and the deploy gate."),
    ("export", "lowres_ocr.export.commands", "ONNX export and TensorRT conversion."),
    ("serve", "lowres_ocr.serving.commands", "Triton model repository and a local tritonserver."),
    ("infer", "lowres_ocr.serving.infer_commands", "Query a Triton endpoint over HTTP or gRPC."),
    ("read", "lowres_ocr.page.commands", "Read whole pages: text detection + our recognizer, JSON and a picture per image."),
    ("pipeline", "lowres_ocr.pipeline.commands", "Compile or run the Kubeflow pipeline (embedded or on a cluster)."),
]

for _name, _module, _help in _GROUPS:
    _sub = importlib.import_module(_module).app
    if isinstance(_sub, typer.Typer):
        app.add_typer(_sub, name=_name, help=_help)
    else:  # a plain function: a single command
        app.command(name=_name, help=_help)(_sub)


if __name__ == "__main__":
    app()
