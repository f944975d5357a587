"""The synthetic set's people and pictures: a person's identity (gender, age, race, face shape,
skin, hair, clothes) and one image of them with a mask state, drawn with OpenCV from a seeded
generator, so the same generator state gives the same bytes (``synthetic.py`` writes the layout).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

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


def sample_person(rng: np.random.Generator, difficulty: float) -> Person:
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
    r, g, b = (int(v) for v in np.clip(colour, 0, 255))
    return r, g, b


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


def _draw_face(img: np.ndarray, person: Person, cx: float, cy: float, fw: float, fh: float, h: int, w: int,
               s: float) -> None:
    """Shoulders, hair, neck, face, beard shadow, eyes, brows, wrinkles, nose and mouth (no randomness)."""
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


def _pose_and_light(img: np.ndarray, rng: np.random.Generator, h: int, w: int, difficulty: float) -> np.ndarray:
    """Shift, scale and rotation, then a light gain with a horizontal ramp and a colour cast."""
    jitter = 0.5 + difficulty
    ang = rng.normal(0, 5 * jitter)
    scale = 1 + rng.normal(0, 0.04 * jitter)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), ang, scale)
    m[:, 2] += np.array([rng.normal(0, 0.03 * jitter * w), rng.normal(0, 0.03 * jitter * h)])
    img = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT_101)
    gain = rng.uniform(1 - 0.25 * jitter, 1 + 0.2 * jitter)
    ramp = np.linspace(1 - 0.15 * jitter, 1 + 0.15 * jitter, w, dtype=np.float32)
    if rng.random() < 0.5:
        ramp = ramp[::-1]
    img = img.astype(np.float32) * (gain * ramp)[None, :, None]
    img += rng.normal(0, 2 + 4 * difficulty, (1, 1, 3)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def render(person: Person, state: int, rng: np.random.Generator, h: int, w: int, difficulty: float) -> np.ndarray:
    """One BGR uint8 image of ``person`` with mask ``state``."""
    img = _background(rng, h, w)
    s = w / 96  # line width scale
    cx, cy = w * 0.5, h * 0.45
    fw, fh = w * person.face_w, h * person.face_h * 0.75
    _draw_face(img, person, cx, cy, fw, fh, h, w, s)
    _draw_mask(img, rng, cx, cy, fw, fh, state, s)
    return _pose_and_light(img, rng, h, w, difficulty)


def encode(img: np.ndarray, ext: str, quality: int) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext in (".jpg", ".jpeg") else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, buf = cv2.imencode(ext, img, params)
    if not ok:
        raise RuntimeError(f"could not encode {ext}")
    return buf.tobytes()
