"""Prediction: test-time augmentation, ensembles of checkpoints, run directories."""
