"""Semi-supervised learning (``ssl=``): UDA's settings, its weight ramps and Training Signal Annealing."""
