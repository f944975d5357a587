"""task=export's graph: every head exports, onnxruntime computes what PyTorch computes, and a
refused export leaves no file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mask_cls.module import MaskClassifier
from tests.conftest import conf_group, module_config


@pytest.mark.parametrize("head", ["linear", "arcface", "multitask"])
def test_every_head_exports_with_parity_at_three_batch_sizes(head, tmp_path):
    from mask_cls.export.graph import ExportGraph
    from mask_cls.export.onnx_io import write_onnx

    torch.manual_seed(0)
    cfg = module_config() | {"head": conf_group("head", head), "image_size": [32, 24]}
    cfg["model"] = cfg["model"] | {"backbone": "mobilenetv3_small_050"}
    modules = [MaskClassifier(cfg).eval() for _ in range(2)]  # two differently initialised models
    graph = ExportGraph(modules, [3.0, 1.0], ["none", "hflip"])
    images = np.random.default_rng(0).integers(0, 256, (9, 3, 32, 24), dtype=np.uint8)
    checked = write_onnx(graph, [32, 24], tmp_path / "model.onnx", images)
    assert [r["batch"] for r in checked["batches"]] == [1, 7, 32]
    assert all(r["max_abs_diff"] <= 1e-4 and r["argmax_agree"] == 1.0 for r in checked["batches"])
    import onnxruntime as ort

    got = ort.InferenceSession(str(tmp_path / "model.onnx")).run(["probs"], {"images": images})[0]
    # the graph is the weighted average of each model's TTA mean, margins off (no target)
    with torch.no_grad():
        x = torch.from_numpy(images)
        each = [(m.net.probs(m.preprocess(x)) + m.net.probs(m.preprocess(x).flip(-1))) / 2 for m in modules]
        ref = (0.75 * each[0] + 0.25 * each[1]).numpy()
    assert np.abs(each[0] - each[1]).numpy().max() > 1e-3  # the models differ: the weights matter
    np.testing.assert_allclose(got, ref, atol=1e-4)
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-5)


def test_a_refused_export_leaves_no_file(tmp_path, monkeypatch):
    from mask_cls.errors import ConfigError
    from mask_cls.export import onnx_io
    from mask_cls.export.graph import ExportGraph

    cfg = module_config() | {"image_size": [32, 24]}
    cfg["model"] = cfg["model"] | {"backbone": "mobilenetv3_small_050"}
    graph = ExportGraph([MaskClassifier(cfg).eval()], [1.0], ["none"])
    monkeypatch.setattr(onnx_io, "TOLERANCE", -1.0)  # nothing passes
    with pytest.raises(ConfigError, match="differs from PyTorch"):
        onnx_io.write_onnx(graph, [32, 24], tmp_path / "model.onnx", np.zeros((2, 3, 32, 24), np.uint8))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("factor, refused", [(0.5, False), (2.0, True)])
def test_parity_refuses_one_element_past_the_tolerance(tmp_path, monkeypatch, factor, refused):
    """One probability of one image off by twice the tolerance is refused; by half, accepted
    (a check of the mean, or of the first image only, would pass the first)."""
    import onnxruntime as ort

    from mask_cls.errors import ConfigError
    from mask_cls.export import onnx_io
    from mask_cls.export.graph import ExportGraph

    cfg = module_config() | {"image_size": [32, 24]}
    cfg["model"] = cfg["model"] | {"backbone": "mobilenetv3_small_050"}
    graph = ExportGraph([MaskClassifier(cfg).eval()], [1.0], ["none"])
    real = ort.InferenceSession

    class Perturbed(real):  # the ONNX output with one element moved, in the last row of the batch of 7
        def run(self, names, feeds):
            out = super().run(names, feeds)
            if len(out[0]) == 7:
                out[0][6, 11] += factor * onnx_io.TOLERANCE
            return out

    monkeypatch.setattr(ort, "InferenceSession", Perturbed)
    images = np.random.default_rng(0).integers(0, 255, (7, 3, 32, 24), dtype=np.uint8)
    if refused:
        with pytest.raises(ConfigError, match="differs from PyTorch"):
            onnx_io.write_onnx(graph, [32, 24], tmp_path / "model.onnx", images)
        assert list(tmp_path.iterdir()) == []
    else:
        checked = onnx_io.write_onnx(graph, [32, 24], tmp_path / "model.onnx", images)
        assert max(r["max_abs_diff"] for r in checked["batches"]) >= 0.5 * onnx_io.TOLERANCE


def test_an_export_folder_is_data(tmp_path):
    """export.json is read as data: a file name that leads out of the folder, or a config with a
    foreign target, is refused in one line naming the manifest."""
    import json

    from mask_cls.errors import ConfigError
    from mask_cls.export.weights import load, save

    cfg = module_config() | {"image_size": [32, 24]}
    cfg["model"] = cfg["model"] | {"backbone": "mobilenetv3_small_050"}
    good = tmp_path / "good"
    save([MaskClassifier(cfg).eval()], [1.0], ["none"], good, {})
    assert len(load(good)[0]) == 1
    manifest = json.loads((good / "export.json").read_text())
    for name, change in (("escape", lambda m: m["models"][0].update(file="../good/../../outside.safetensors")),
                         ("target", lambda m: m["models"][0]["config"]["loss"].update(_target_="os.system"))):
        bad = tmp_path / name
        bad.mkdir()
        (bad / "weights_0.safetensors").write_bytes((good / "weights_0.safetensors").read_bytes())
        m = json.loads(json.dumps(manifest))
        change(m)
        (bad / "export.json").write_text(json.dumps(m))
        with pytest.raises(ConfigError, match=f"{bad / 'export.json'}: model .* refused"):
            load(bad)
