"""Export stage: ONNX with a parity check, TensorRT, their CLI and KFP steps."""
