"""Batch-level augmentations on the device, after normalisation, while training only: one file
per operation (a ``BatchOp`` subclass whose ``key`` names its entry under ``augment.batch``),
found by scanning this package, so a new one is its file and its config."""
