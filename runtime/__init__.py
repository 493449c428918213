"""The nasforge runtime: the command line now; later datasets, training, ONNX export, executors."""
