"""Stage 1, the model: labels, the FER2013 data, transforms, the network, checkpoints, inference with TTA and
calibration, evaluation, the torch and ONNX backends, and where the package's files are (paths). Imports no other
stage. Empty on purpose, so that importing one module of it stays cheap."""
