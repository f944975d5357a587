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

import cv2
import numpy as np
import pandas as pd

from mask_cls import labels as L
from mask_cls.io import sweep_stale, temp_prefix, umask

log = logging.getLogger(__name__)

# Proportions of the real competition set (its published statistics): 61.3% female, 7.1% aged 60, ~47% under 30.
P_FEMALE = 1655 / 2700
P_OLD = 192 / 2700
P_YOUNG = 0.474
RACES = (("Asian", 0.93), ("White", 0.04), ("Black", 0.03))
SKIN_BY_RACE = {  # BGR base tones
    "Asian": (150, 185, 225),
    "White": (170, 200, 235),
    "Black": (60, 85, 120),
}
MASK_COLOURS = (  # BGR
    (245, 245, 245), (30, 30, 30), (230, 200, 150), (200, 170, 240), (170, 170, 170),
    (120, 80, 40), (90, 160, 90), (215, 230, 240),
)
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


@dataclass
class Person:
    gender: int
    age: int
    race: str
    face_w: float
    face_h: float
    skin: np.ndarray
    hair_colour: np.ndarray
    long_hair: bool
    hair_volume: float
    lip: np.ndarray
    beard: float
    wrinkles: int
    brow: int
    shirt: tuple
    eye_gap: float


def _sample_age(rng: np.random.Generator) -> int:
    u = rng.random()
    if u < P_OLD:
        return 60
    if u < P_OLD + P_YOUNG:
        return int(18 + min(11, np.floor(12 * rng.beta(1.0, 1.6))))
    return int(30 + min(29, np.floor(30 * rng.beta(2.2, 1.1))))


def _sample_person(rng: np.random.Generator, difficulty: float) -> Person:
    noise = 0.05 + 0.25 * difficulty
    gender = int(rng.random() < P_FEMALE)  # 1 = female
    age = _sample_age(rng)
    race = RACES[rng.choice(len(RACES), p=[p for _, p in RACES])][0]
    ageing = np.clip((age - 18) / 42 + rng.normal(0, noise * 0.25), 0, 1.2)  # continuous in age
    skin = np.array(SKIN_BY_RACE[race], float) + rng.normal(0, 12, 3) - 18 * ageing
    grey = np.clip(ageing**1.6 + rng.normal(0, noise * 0.3), 0, 1)
    dark_hair = np.array([25, 30, 40], float) + rng.normal(0, 10, 3)
    if rng.random() < 0.08:  # dyed / light hair hides greying for some
        dark_hair = np.array([40, 70, 120], float) + rng.normal(0, 15, 3)
        grey *= 0.4
    hair = (1 - grey) * dark_hair + grey * np.array([205, 205, 210])
    long_hair = bool(rng.random() < (0.85 if gender else 0.08) * (1 - 0.4 * difficulty) + 0.2 * difficulty * (not gender))
    lip = np.array([90, 80, 185] if gender else [110, 120, 165], float) + rng.normal(0, 12 + 30 * noise, 3)
    beard = float(np.clip((0 if gender else rng.uniform(0.0, 0.8)) + rng.normal(0, noise * 0.3), 0, 1))
    wrinkles = int(max(0, round(7 * ageing**1.5 + rng.normal(0, 0.5 + noise))))
    jaw = 1.06 if not gender else 0.97
    return Person(
        gender=gender,
        age=age,
        race=race,
        face_w=float(0.22 * jaw * (1 + rng.normal(0, 0.05 + noise * 0.2))),
        face_h=float(0.27 * (1 + rng.normal(0, 0.05))),
        skin=np.clip(skin, 20, 250),
        hair_colour=np.clip(hair, 0, 255),
        long_hair=long_hair,
        hair_volume=float(rng.uniform(0.9, 1.2)),
        lip=np.clip(lip, 0, 255),
        beard=beard,
        wrinkles=wrinkles,
        brow=int(rng.integers(1, 3) + (0 if gender else 1)),
        shirt=tuple(int(c) for c in rng.integers(30, 230, 3)),
        eye_gap=float(rng.uniform(0.38, 0.46)),
    )


def _c(colour) -> tuple[int, int, int]:
    return tuple(int(v) for v in np.clip(colour, 0, 255))


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    a = rng.integers(40, 240, 3).astype(np.float32)
    b = rng.integers(40, 240, 3).astype(np.float32)
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    img = a * (1 - t) + b * t
    return np.broadcast_to(img, (h, w, 3)).astype(np.uint8).copy()


def _draw_mask(img, rng, cx, cy, fw, fh, state: int, s: float) -> None:
    """Mask over nose and mouth (0), below the nose or on the chin (1); nothing for 2."""
    # the same draws for every state, so the rest of the image is identical across states
    colour = np.array(MASK_COLOURS[rng.integers(len(MASK_COLOURS))], float) + rng.normal(0, 10, 3)
    style = rng.integers(3)  # surgical, kf94 (pointed), cloth (rounded)
    u, on_chin = rng.random(), rng.random() < 0.4
    if state == 2:
        return
    if state == 0:
        top = cy + fh * (-0.02 + 0.1 * u)  # above the nose tip
    elif not on_chin:
        top = cy + fh * (0.30 + 0.08 * u)  # below the nose, over the mouth
    else:
        top = cy + fh * (0.62 + 0.1 * u)  # on the chin, mouth visible
    bottom = cy + fh * 1.02
    half = fw * 1.02
    if style == 1:
        pts = [(cx - half, top + 0.1 * fh), (cx, top - 0.05 * fh), (cx + half, top + 0.1 * fh),
               (cx + 0.8 * half, bottom), (cx, bottom + 0.08 * fh), (cx - 0.8 * half, bottom)]
    else:
        pts = [(cx - half, top), (cx + half, top), (cx + 0.85 * half, bottom), (cx - 0.85 * half, bottom)]
    poly = np.array(pts, np.int32)
    cv2.fillPoly(img, [poly], _c(colour), cv2.LINE_AA)
    if style == 2:
        cv2.ellipse(img, (int(cx), int(bottom)), (int(0.85 * half), int(0.12 * fh)), 0, 0, 180, _c(colour), -1, cv2.LINE_AA)
    if style == 0:  # pleats
        for k in (1, 2, 3):
            y = int(top + (bottom - top) * k / 4)
            cv2.line(img, (int(cx - 0.9 * half), y), (int(cx + 0.9 * half), y), _c(colour * 0.8), max(1, int(s)), cv2.LINE_AA)
    # ear loops
    for side in (-1, 1):
        cv2.line(img, (int(cx + side * half), int(top)), (int(cx + side * fw * 1.1), int(cy - 0.05 * fh)),
                 _c(colour * 0.9), max(1, int(s)), cv2.LINE_AA)


def render(person: Person, state: int, rng: np.random.Generator, h: int, w: int, difficulty: float) -> np.ndarray:
    """One BGR uint8 image of ``person`` with mask ``state``."""
    img = _background(rng, h, w)
    s = w / 96  # line width scale
    cx, cy = w * 0.5, h * 0.45
    fw, fh = w * person.face_w, h * person.face_h * 0.75
    # shoulders and clothes
    cv2.ellipse(img, (int(cx), int(h * 1.05)), (int(w * 0.45), int(h * 0.25)), 0, 180, 360, person.shirt, -1, cv2.LINE_AA)
    hair = _c(person.hair_colour)
    if person.long_hair:  # long hair falls behind the face to the shoulders
        cv2.ellipse(img, (int(cx), int(cy + fh * 0.5)), (int(fw * 1.25 * person.hair_volume), int(fh * 1.6)), 0, 0, 360, hair, -1, cv2.LINE_AA)
    cv2.ellipse(img, (int(cx), int(cy + fh * 0.75)), (int(fw * 0.45), int(fh * 0.6)), 0, 0, 360, _c(person.skin * 0.95), -1, cv2.LINE_AA)  # neck
    cv2.ellipse(img, (int(cx), int(cy)), (int(fw), int(fh)), 0, 0, 360, _c(person.skin), -1, cv2.LINE_AA)
    # hair on top of the head
    cv2.ellipse(img, (int(cx), int(cy - fh * 0.35)), (int(fw * 1.05 * person.hair_volume), int(fh * 0.75)), 0, 180, 360, hair, -1, cv2.LINE_AA)
    # beard shadow (male cue)
    if person.beard > 0.05:
        shade = person.skin * (1 - 0.45 * person.beard)
        cv2.ellipse(img, (int(cx), int(cy + fh * 0.45)), (int(fw * 0.85), int(fh * 0.55)), 0, 0, 180, _c(shade), -1, cv2.LINE_AA)
    # eyes and brows
    ey = int(cy - fh * 0.05)
    for side in (-1, 1):
        ex = int(cx + side * fw * person.eye_gap)
        cv2.ellipse(img, (ex, ey), (max(2, int(fw * 0.16)), max(1, int(fh * 0.07))), 0, 0, 360, (240, 240, 240), -1, cv2.LINE_AA)
        cv2.circle(img, (ex, ey), max(1, int(fw * 0.07)), (40, 30, 20), -1, cv2.LINE_AA)
        by = int(ey - fh * 0.17)
        cv2.line(img, (ex - int(fw * 0.18), by), (ex + int(fw * 0.18), by - int(side * 0)), _c(person.hair_colour * 0.8 + 20), max(1, int(person.brow * s)), cv2.LINE_AA)
    # wrinkles (age cue): forehead lines and crow's feet, darker than the skin
    wr = _c(person.skin * 0.72)
    for k in range(person.wrinkles):
        if k % 2 == 0:
            y = int(cy - fh * (0.32 + 0.08 * (k // 2 % 3)))
            cv2.line(img, (int(cx - fw * 0.45), y), (int(cx + fw * 0.45), y), wr, max(1, int(s * 0.7)), cv2.LINE_AA)
        else:
            for side in (-1, 1):
                x0 = int(cx + side * fw * 0.7)
                cv2.line(img, (x0, ey), (x0 + side * int(fw * 0.15), ey + int(fh * 0.05 * (k // 2 % 3 - 1))), wr, max(1, int(s * 0.7)), cv2.LINE_AA)
    # nose and mouth
    nose = np.array([(cx, cy + fh * 0.05), (cx - fw * 0.12, cy + fh * 0.3), (cx + fw * 0.12, cy + fh * 0.3)], np.int32)
    cv2.fillPoly(img, [nose], _c(person.skin * 0.82), cv2.LINE_AA)
    cv2.ellipse(img, (int(cx), int(cy + fh * 0.52)), (int(fw * 0.32), max(1, int(fh * 0.08))), 0, 0, 360, _c(person.lip), -1, cv2.LINE_AA)
    _draw_mask(img, rng, cx, cy, fw, fh, state, s)
    # pose: shift, scale, rotation; then light
    jitter = 0.5 + difficulty
    ang = rng.normal(0, 5 * jitter)
    scale = 1 + rng.normal(0, 0.04 * jitter)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), ang, scale)
    m[:, 2] += (rng.normal(0, 0.03 * jitter * w), rng.normal(0, 0.03 * jitter * h))
    img = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT_101)
    gain = rng.uniform(1 - 0.25 * jitter, 1 + 0.2 * jitter)
    ramp = np.linspace(1 - 0.15 * jitter, 1 + 0.15 * jitter, w, dtype=np.float32)
    if rng.random() < 0.5:
        ramp = ramp[::-1]
    img = img.astype(np.float32) * (gain * ramp)[None, :, None]
    img += rng.normal(0, 2 + 4 * difficulty, (1, 1, 3)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def _encode(img: np.ndarray, ext: str, quality: int) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext in (".jpg", ".jpeg") else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, buf = cv2.imencode(ext, img, params)
    if not ok:
        raise RuntimeError(f"could not encode {ext}")
    return buf.tobytes()


def _person_job(args):
    """Draw one person's identity and seven images; returns the person and encoded files."""
    seed_seq, cfg, split = args
    rng = np.random.default_rng(seed_seq)
    person = _sample_person(rng, cfg.difficulty)
    h, w = cfg.image_size
    exts, probs = zip(*cfg.extensions.items())
    base_ext = exts[rng.choice(len(exts), p=np.array(probs) / sum(probs))]
    files = {}
    for stem in IMAGE_STEMS:
        ext = base_ext if rng.random() < 0.9 else exts[rng.integers(len(exts))]
        if split == "eval":
            ext = ".jpg"
        img = render(person, L.MASK_FILES[stem], rng, h, w, cfg.difficulty)
        files[stem] = (ext, _encode(img, ext, cfg.jpeg_quality))
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
    from mask_cls.progress import track

    ss = np.random.SeedSequence(cfg.seed)
    train_ss, eval_ss, meta_ss = ss.spawn(3)
    meta = np.random.default_rng(meta_ss)
    workers = cfg.workers or os.cpu_count() or 1
    n_tr, n_ev = cfg.train_persons, cfg.eval_persons
    jobs = [(s, cfg, "train") for s in train_ss.spawn(n_tr)] + [(s, cfg, "eval") for s in eval_ss.spawn(n_ev)]
    chunks = [jobs[i:i + 256] for i in range(0, len(jobs), 256)]
    results = []
    it = track(chunks, len(chunks), f"drawing {n_tr + n_ev} persons", "chunks of 256") if progress and len(chunks) > 1 \
        else chunks
    for chunk in it:
        results.extend(_map(chunk, workers))
    train_res, eval_res = results[:n_tr], results[n_tr:]

    img_dir = root / "train" / "images"
    img_dir.mkdir(parents=True)
    rows, noise_rows = [], []
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
    manifest = {"generator": "mask_cls.synthetic", "version": 1, **asdict(cfg)}
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
    cfg = SynthConfig(**{k: (tuple(v) if k == "image_size" else v) for k, v in dict(synth).items()})
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
