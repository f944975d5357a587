"""Which normalisation the pretrained Lite0 weights expect, measured on real photos.

The stem convolution is linear, so the first BatchNorm's running mean and variance (learnt on
ImageNet under the weights' own input scale) tell which mean/std puts new photos where the
network expects them: the batch statistics of the stem's output, over the images of ROOT's
person folders (``normal`` photos), are compared with the running ones for each candidate.

    python bench/bn_stats.py ROOT [--images 300] [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import timm
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, parser  # noqa: E402

from mask_cls.models.weights import lite0_file, load_backbone_weights  # noqa: E402

CANDIDATES = {"0.5 / 0.5 (model=lite0_pretrained)": ([0.5] * 3, [0.5] * 3),
              "ImageNet mean / std": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])}


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("root", type=Path)
    p.add_argument("--images", type=int, default=300)
    args = p.parse_args()
    files = sorted((args.root / "train" / "images").glob("*/normal.*"))[: 8 if args.quick else args.images]
    size = 64 if args.quick else 224
    x = torch.stack([torch.from_numpy(np.array(Image.open(f).convert("RGB").resize((size, size)))).permute(2, 0, 1)
                     for f in files]).float() / 255
    net = timm.create_model("tf_efficientnet_lite0", num_classes=0)
    load_backbone_weights(net, lite0_file())
    bn, live = net.bn1, net.bn1.running_var > 1e-6  # channels that never fire have no statistics
    print(f"\nstem BatchNorm statistics of {len(files)} photos of {args.root}\nmachine: {machine()}")
    print(f"{'normalisation':<40}{'|mean shift| / running sd':>28}{'var / running var':>20}")
    for name, (mean, std) in CANDIDATES.items():
        xn = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
        with torch.no_grad():
            a = net.conv_stem(xn)
        shift = ((a.mean((0, 2, 3)) - bn.running_mean).abs() / bn.running_var.clamp_min(1e-6).sqrt())[live]
        ratio = (a.var((0, 2, 3)) / bn.running_var.clamp_min(1e-6))[live]
        print(f"{name:<40}{shift.median():>28.3f}{ratio.median():>20.2f}")


if __name__ == "__main__":
    main()
