"""Serving on NVIDIA Triton: the ensemble ``lowres_ocr`` = preprocess → recognizer → decode.

- ``image_input``: encoded image → network input, with the serving size limits (numpy/PIL only, vendored).
- ``configs`` / ``repository``: config.pbtxt text, the repository writer (production onnxruntime_onnx or
  tensorrt_plan, ``--local`` python+ORT), validation against Triton's ModelConfig protobuf.
- ``templates/``: the python-backend ``model.py`` files (preprocess, decode, local recognizer).
- ``server``: the local tritonserver process (context manager ``TritonServer``).
- ``client`` / ``smoke``: tritonclient wrapper over HTTP or gRPC, and the deployment smoke test.
- ``commands`` (``lowres-ocr serve``) and ``infer_commands`` (``lowres-ocr infer``).
"""
