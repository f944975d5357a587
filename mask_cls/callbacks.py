"""Callbacks of ``conf/callbacks``: the best-checkpoint keeper that survives ``resume=``."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import ModelCheckpoint


class BestCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that, resumed into a new run directory, keeps the run's best score
    and best checkpoint (copied into the new ``checkpoints/``): a worse epoch after a resume
    never wins. Lightning's own class forgets both when the directory changes."""

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        old_dir, best = state_dict.get("dirpath"), state_dict.get("best_model_path") or ""
        score = state_dict.get("best_model_score")
        if not old_dir or self.dirpath is None or old_dir == self.dirpath or score is None:
            return super().load_state_dict(state_dict)
        src = Path(best)
        # only a file of the resumed run's own checkpoints folder is followed
        if not (src.is_file() and src.resolve().parent == Path(old_dir).resolve()):
            return super().load_state_dict({**state_dict, "dirpath": self.dirpath, "best_model_path": ""})
        Path(self.dirpath).mkdir(parents=True, exist_ok=True)
        dst = Path(self.dirpath) / src.name
        shutil.copyfile(src, dst)
        score = torch.as_tensor(score)
        super().load_state_dict({**state_dict, "dirpath": self.dirpath, "best_model_path": str(dst),
                                 "kth_best_model_path": str(dst), "kth_value": score,
                                 "best_k_models": {str(dst): score}, "last_model_path": "",
                                 "best_model_score": score})
