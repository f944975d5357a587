"""Procedurally drawn faces written in exactly the competition layout.

Each person has one identity (face shape, skin, hair, clothes) drawn once and kept across its
seven images; each image varies pose, light, background and the mask's colour and style.
Gender and age are carried by visual cues with per-person noise: hair length, lip colour,
beard shadow and jaw width for gender; hair greying, wrinkles and skin tone for age, all
continuous in age, so that a 57-year-old and a 60-year-old really are hard to tell apart.
The same seed gives the same bytes: every person draws from its own SeedSequence child.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mask_cls import labels as L
from mask_cls.data.synthetic_faces import encode, render, sample_person
from mask_cls.io import sweep_stale, temp_prefix, umask

log = logging.getLogger(__name__)

APPLEDOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(4066)
IMAGE_STEMS = tuple(L.MASK_FILES)


@dataclass
class SynthConfig:
    """Sizes, knobs and seed of a synthetic dataset (``synth.*`` in the config)."""

    train_persons: int = 2700
    eval_persons: int = 1800
    image_size: tuple[int, int] = (256, 192)  # (H, W)
    seed: int = 0
    difficulty: float = 0.5  # 0 easy .. 1 hard: noise on every cue, pose, light
    label_noise: float = 0.01  # share of persons with one wrong label in train.csv
    junk: bool = True  # hidden ._ files, .DS_Store, .ipynb_checkpoints, as in the real data
    jpeg_quality: int = 90
    workers: int = 0  # 0: one process per CPU core
    extensions: dict = field(default_factory=lambda: {".jpg": 0.85, ".jpeg": 0.08, ".png": 0.07})


def _person_job(args):
    """Draw one person's identity and seven images; returns the person and encoded files."""
    seed_seq, cfg, split = args
    rng = np.random.default_rng(seed_seq)
    person = sample_person(rng, cfg.difficulty)
    h, w = cfg.image_size
    exts, probs = zip(*cfg.extensions.items())
    base_ext = exts[rng.choice(len(exts), p=np.array(probs) / sum(probs))]
    files = {}
    for stem in IMAGE_STEMS:
        ext = base_ext if rng.random() < 0.9 else exts[rng.integers(len(exts))]
        if split == "eval":
            ext = ".jpg"
        img = render(person, L.MASK_FILES[stem], rng, h, w, cfg.difficulty)
        files[stem] = (ext, encode(img, ext, cfg.jpeg_quality))
    return person, files


def _map(jobs, workers: int):
    if workers == 1 or len(jobs) < 64:
        return [_person_job(j) for j in jobs]
    with get_context("fork").Pool(workers) as pool:
        return pool.map(_person_job, jobs, chunksize=32)


def _ids(rng: np.random.Generator, n: int) -> list[str]:
    """Six-digit ids with gaps (increasing, so all distinct)."""
    return [f"{x:06d}" for x in np.cumsum(rng.integers(1, 4, n))]


def generate(root: str | Path, cfg: SynthConfig, progress: bool = True) -> dict:
    """Write a dataset to ``root`` (which must not exist) and return its manifest.

    Written into a temp folder beside ``root`` and renamed at the end, so an interrupted run
    never leaves a half-written dataset behind.
    """
    root = Path(root)
    if root.exists():
        raise FileExistsError(f"{root} already exists")
    root.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(root.parent)  # what a killed generation left behind
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(root.name), suffix=".tmp", dir=root.parent))
    try:
        os.chmod(tmp, 0o777 & ~umask())  # mkdtemp makes 0700; a dataset follows the umask
        manifest = _write(tmp, cfg, progress)
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _write(root: Path, cfg: SynthConfig, progress: bool) -> dict:
    ss = np.random.SeedSequence(cfg.seed)
    train_ss, eval_ss, meta_ss = ss.spawn(3)
    meta = np.random.default_rng(meta_ss)
    n_tr, n_ev = cfg.train_persons, cfg.eval_persons
    results = _draw_all(cfg, train_ss, eval_ss, progress)
    train_res, eval_res = results[:n_tr], results[n_tr:]

    img_dir = root / "train" / "images"
    img_dir.mkdir(parents=True)
    rows: list[tuple] = []
    noise_rows: list[tuple[str, str, str, str]] = []
    noisy = set(meta.choice(n_tr, size=int(round(cfg.label_noise * n_tr)), replace=False).tolist()) if n_tr else set()
    for i, ((p, files), pid) in enumerate(zip(train_res, _ids(meta, n_tr))):
        gender_written = L.GENDER_NAMES[p.gender]
        kind = None
        if i in noisy:  # one wrong label: gender in the csv, or two swapped files
            kind = "gender" if meta.random() < 0.6 else "mask"
            if kind == "gender":
                gender_written = L.GENDER_NAMES[1 - p.gender]
            else:
                files["incorrect_mask"], files["normal"] = files["normal"], files["incorrect_mask"]
        folder = f"{pid}_{gender_written}_{p.race}_{p.age}"
        if i == n_tr // 2 + 1 and n_tr >= 10:  # one id used by two persons, as 003397 in the real data
            twin = f"{rows[-1][0]}_{gender_written}_{p.race}_{p.age}"
            if not (img_dir / twin).exists():
                pid, folder = rows[-1][0], twin
        if kind == "gender":
            noise_rows.append((folder, "gender", L.GENDER_NAMES[p.gender], gender_written))
        elif kind == "mask":
            noise_rows.append((folder, "mask", "incorrect_mask<->normal", "swapped"))
        d = img_dir / folder
        d.mkdir()
        for stem, (ext, data) in files.items():
            (d / f"{stem}{ext}").write_bytes(data)
            if cfg.junk and meta.random() < 0.02:
                (d / f"._{stem}{ext}").write_bytes(APPLEDOUBLE)
        rows.append((pid, gender_written, p.race, p.age, folder))
    if cfg.junk and n_tr:
        (img_dir / ".DS_Store").write_bytes(bytes(64))
        first = img_dir / rows[0][4]
        (first / ".ipynb_checkpoints").mkdir()
        (first / ".ipynb_checkpoints" / "mask1-checkpoint.jpg").write_bytes(b"not an image")
    pd.DataFrame(rows, columns=["id", "gender", "race", "age", "path"]).to_csv(root / "train" / "train.csv", index=False)

    if n_ev:
        _write_eval(root, cfg, eval_res, meta)
    pd.DataFrame(noise_rows, columns=["path", "field", "true", "written"]).to_csv(root / "label_noise.csv", index=False)
    return _write_manifest(root, cfg)


def _draw_all(cfg: SynthConfig, train_ss: np.random.SeedSequence, eval_ss: np.random.SeedSequence,
              progress: bool) -> list:
    """Every person drawn (train persons first), in chunks across worker processes."""
    from mask_cls.progress import track

    workers = cfg.workers or os.cpu_count() or 1
    n_tr, n_ev = cfg.train_persons, cfg.eval_persons
    jobs = [(s, cfg, "train") for s in train_ss.spawn(n_tr)] + [(s, cfg, "eval") for s in eval_ss.spawn(n_ev)]
    chunks = [jobs[i:i + 256] for i in range(0, len(jobs), 256)]
    results = []
    it = track(chunks, len(chunks), f"drawing {n_tr + n_ev} persons", "chunks of 256") if progress and len(chunks) > 1 \
        else chunks
    for chunk in it:
        results.extend(_map(chunk, workers))
    return results


def _write_manifest(root: Path, cfg: SynthConfig) -> dict:
    manifest = {"generator": "mask_cls.data.synthetic", "version": 1, **asdict(cfg)}
    manifest["image_size"] = list(cfg.image_size)
    manifest.pop("workers")
    (root / "synth.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _write_eval(root: Path, cfg: SynthConfig, eval_res: list, meta: np.random.Generator) -> None:
    """Eval images under hashed names, info.csv in shuffled order, the answer key outside eval/."""
    ev_dir = root / "eval" / "images"
    ev_dir.mkdir(parents=True)
    eval_rows = []
    for i, (p, files) in enumerate(eval_res):
        for stem, (ext, data) in files.items():
            name = hashlib.sha1(f"{cfg.seed}-{i}-{stem}".encode()).hexdigest() + ext
            (ev_dir / name).write_bytes(data)
            eval_rows.append((name, L.encode(L.MASK_FILES[stem], p.gender, L.age_group(p.age)), i))
    order = meta.permutation(len(eval_rows))
    eval_rows = [eval_rows[k] for k in order]
    pd.DataFrame({"ImageID": [r[0] for r in eval_rows], "ans": 0}).to_csv(root / "eval" / "info.csv", index=False)
    pd.DataFrame([r[:2] for r in eval_rows], columns=["ImageID", "ans"]).to_csv(root / "eval_answers.csv", index=False)
    # which eval person each image shows, beside the key (benchmarks split the eval persons in halves)
    pd.DataFrame([(r[0], r[2]) for r in eval_rows], columns=["ImageID", "person"]).to_csv(root / "eval_persons.csv",
                                                                                          index=False)


def ensure(root: str | Path, synth: Mapping[str, Any], progress: bool = True) -> None:
    """Draw the synthetic dataset into ``root`` unless it is already there.

    A dataset drawn with other settings is used as it is, with a warning naming the
    difference (delete the folder or point ``data.root`` elsewhere to redraw).
    """
    root = Path(root)
    options: dict[str, Any] = {k: (tuple(v) if k == "image_size" else v) for k, v in dict(synth).items()}
    cfg = SynthConfig(**options)
    manifest_path = root / "synth.json"
    if root.exists():
        if manifest_path.is_file():
            have = json.loads(manifest_path.read_text())
            want = {**asdict(cfg), "image_size": list(cfg.image_size)}
            diff = [k for k in have if k in want and k != "workers" and have[k] != want[k]]
            if diff:
                log.warning("%s was drawn with other synth settings (%s); using it as it is",
                            root, ", ".join(f"{k}={have[k]}" for k in diff))
        return
    log.info("drawing the synthetic dataset into %s (%d + %d persons)", root, cfg.train_persons, cfg.eval_persons)
    root.parent.mkdir(parents=True, exist_ok=True)
    try:
        generate(root, cfg, progress=progress)
    except OSError:  # the final rename lost a race: jobs of a sweep started together draw it at once
        if not manifest_path.is_file():
            raise
        log.info("%s was drawn by another process at the same time; using that copy", root)
