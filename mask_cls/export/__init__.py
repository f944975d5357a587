"""A run as files other people use: an ONNX graph with its parity check, weights without
pickle, and a model card (``task=export``)."""
