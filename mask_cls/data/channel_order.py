"""Whether face arrays were handed over in OpenCV's BGR order by mistake (``cv2.imread`` without
``cvtColor``): a model fed BGR sees blue skin and answers with confidence all the same.

The test is the colour of the band across the forehead and eyes (rows 15-45%, columns 20-80% of
an aligned face photo), which a mask does not cover: skin there is redder than it is blue. On
600 REALFACES photos (bench/channel_order.py, BENCHMARKS.md "Predictor input"), blue exceeded red by
more than 15 grey levels in 0.7% of the photos as given (RGB) and in 93% of them flipped to BGR;
several arrays in one call are judged by their median, so a batch is rarely misjudged."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

#: grey levels by which blue must exceed red in the forehead band for an array to look BGR
MARGIN = 15.0
BAND_ROWS = (0.15, 0.45)
BAND_COLS = (0.2, 0.8)


def blue_over_red(rgb: np.ndarray) -> float:
    """Mean blue minus mean red (grey levels) in the forehead band of an (H, W, 3) array taken as RGB."""
    h, w = rgb.shape[:2]
    band = rgb[int(h * BAND_ROWS[0]):max(int(h * BAND_ROWS[1]), int(h * BAND_ROWS[0]) + 1),
               int(w * BAND_COLS[0]):max(int(w * BAND_COLS[1]), int(w * BAND_COLS[0]) + 1)]
    return float(band[..., 2].astype(np.float64).mean() - band[..., 0].astype(np.float64).mean())


def looks_bgr(arrays: Iterable[np.ndarray]) -> tuple[bool, float]:
    """(whether the arrays look BGR, the median blue-over-red margin); no arrays: (False, nan)."""
    margins = [blue_over_red(a) for a in arrays]
    if not margins:
        return False, float("nan")
    median = float(np.median(margins))
    return median > MARGIN, median
