"""Synthetic faces: procedurally drawn frontal faces with 32 landmarks, and a trait estimator.

Faces are drawn with Pillow on a canvas `SUPERSAMPLE` times larger than the output and box-filtered
down (antialiasing). Geometry is written in face-local units: the face centre is (0, 0), x grows to
the right, y downwards, and one unit is the image size at scale 1. The face centre sits at image
(0.5, 0.47) plus a small jitter.

`estimate_face_traits` reads gender and age back from pixels only, with fixed image measurements
(no generator parameters), so it can also grade faces that a model reconstructed.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SIZE = 64
SUPERSAMPLE = 4
FACE_CENTRE_Y = 0.47

LANDMARK_NAMES = (
    # contour (9): cheek, mid cheek-jaw, jaw angle, chin side, chin bottom, mirrored
    "contour_cheek_l", "contour_mid_l", "contour_jaw_l", "contour_chin_l", "contour_chin",
    "contour_chin_r", "contour_jaw_r", "contour_mid_r", "contour_cheek_r",
    # brows (6): inner, arch, outer
    "brow_l_inner", "brow_l_arch", "brow_l_outer", "brow_r_inner", "brow_r_arch", "brow_r_outer",
    # eyes (8): outer corner, top, inner corner, bottom
    "eye_l_outer", "eye_l_top", "eye_l_inner", "eye_l_bottom",
    "eye_r_outer", "eye_r_top", "eye_r_inner", "eye_r_bottom",
    # nose (4)
    "nose_bridge", "nose_tip", "nose_alar_l", "nose_alar_r",
    # mouth (5)
    "mouth_corner_l", "mouth_upper", "mouth_corner_r", "mouth_lower", "mouth_centre",
)
N_LANDMARKS = len(LANDMARK_NAMES)

# Hair base colours (before greying): dark shades only, so that greying is readable from the
# hair's lightness whatever the base colour (see SYNTHETIC.md).
HAIR_PALETTE = np.array([(22, 18, 16), (45, 30, 22), (70, 45, 28), (90, 50, 30), (75, 38, 20), (60, 55, 50),
                         (38, 26, 32)], np.float64)
SILVER = np.array((205, 203, 200), np.float64)
SKIN_LIGHT, SKIN_MID, SKIN_DARK = (np.array(c, np.float64) for c in ((238, 204, 178), (198, 150, 110), (98, 64, 44)))
IRIS_PALETTE = np.array([(70, 45, 25), (40, 30, 20), (60, 100, 140), (70, 110, 70), (110, 90, 50)], np.float64)


@dataclasses.dataclass(frozen=True)
class FaceParams:
    # gender-typed
    jaw_ratio: float          # jaw-angle half-width / cheek half-width
    face_length: float        # vertical scale of the lower face
    chin_width: float         # half-width of the chin
    brow_thickness: float
    hair_length: float        # male: sideburn drop below the temple; female: local y where hair ends
    long_hair: bool
    neck_width: float
    # age-typed
    grey: float               # 0 = base hair colour, 1 = silver
    wrinkles: float           # 0..1 darkness of forehead lines, nasolabial folds, crow's feet
    n_forehead_lines: int
    sag: float                # 0..1: lower, wider jaw angle (jowls), eye bags
    # voice-linked within a cell (VoiceLinks)
    nose_width: float         # half-width at the alae (variant)
    eye_spacing: float        # half-distance between eye centres (brightness)
    mouth_width: float        # half-width (pitch range)
    fringe: float             # hairline height (brightness)
    # independent noise
    cheek_width: float        # half-width at the cheeks
    eye_size: float           # eye half-width
    nose_length: float        # local y of the nose tip
    lip_thickness: float
    skin: tuple               # RGB
    hair: tuple               # RGB after greying
    iris: tuple
    lips: tuple
    background: tuple
    clothes: tuple
    offset: tuple             # (dx, dy) image units
    scale: float


def skin_colour(tone: float) -> np.ndarray:
    """tone 0 (light) .. 1 (dark), piecewise linear through three anchors."""
    if tone < 0.5:
        return SKIN_LIGHT + (SKIN_MID - SKIN_LIGHT) * tone / 0.5
    return SKIN_MID + (SKIN_DARK - SKIN_MID) * (tone - 0.5) / 0.5


def _far_colour(rng: np.random.Generator, avoid: list[np.ndarray], distance: float) -> np.ndarray:
    for _ in range(200):
        colour = rng.uniform(20, 245, size=3)
        if all(np.linalg.norm(colour - a) > distance for a in avoid):
            return colour
    return np.where(np.mean(avoid) > 128, 30.0, 230.0) * np.ones(3)


@dataclasses.dataclass(frozen=True)
class VoiceLinks:
    """The voice's identity-level codes that face traits follow, each in about [-2.5, 2.5]:
    `variant` is the eSpeak variant's position in its gender's list, scaled to [-1, 1];
    `brightness` the spectral tilt over its maximum, in [-1, 1]; `pitch`, `rate` and
    `pitch_range` are z-scores within the age bucket."""
    variant: float = 0.0
    brightness: float = 0.0
    pitch: float = 0.0
    rate: float = 0.0
    pitch_range: float = 0.0
    maturity: float = 0.5     # where the identity sits inside its age bucket, [0, 1)


def draw_face_params(gender: int, age: int, links: VoiceLinks, rng: np.random.Generator) -> FaceParams:
    """Face parameters for an identity: `gender` (0 male, 1 female) and `age` (0..2) set the typed
    traits; `links` (the voice's own codes) set the linked traits: variant -> hair cut and nose
    width, brightness -> hairline and eye spacing, pitch -> face length, rate -> jaw width, pitch range
    -> mouth width. Everything else is drawn independently from `rng`."""
    male = gender == 0
    n = rng.normal
    grey_range = ((0.0, 0.06), (0.45, 0.6), (0.85, 1.0))[age]
    wrinkle_range = ((0.0, 0.0), (0.35, 0.5), (0.6, 0.8))[age]
    sag_range = ((0.0, 0.2), (0.3, 0.6), (0.7, 1.0))[age]
    # The age cues sit where the identity's maturity puts them inside the bucket's range (the
    # voice's pitch and rate follow the same maturity); uniform within the bucket, as in rules v2.
    def within(bounds: tuple[float, float]) -> float:
        return bounds[0] + (bounds[1] - bounds[0]) * float(np.clip(links.maturity + n(0, 0.05), 0.0, 1.0))

    grey = within(grey_range)
    base_hair = HAIR_PALETTE[rng.integers(len(HAIR_PALETTE))] + rng.uniform(-6, 6, size=3)
    hair = np.clip((1 - grey) * base_hair + grey * SILVER, 0, 255)
    skin = np.clip(skin_colour(rng.uniform(0, 1)) * rng.uniform(0.96, 1.04, size=3), 0, 255)
    lips = np.clip(0.55 * skin + 0.45 * np.array((175, 70, 75)) * rng.uniform(0.85, 1.1), 0, 255)
    clothes = rng.uniform(20, 235, size=3)
    background = _far_colour(rng, [hair, skin, clothes], 70.0)
    return FaceParams(
        jaw_ratio=float((n(0.84, 0.015) if male else n(0.70, 0.015)) - 0.035 * np.clip(links.rate, -2.5, 2.5)),
        face_length=float((n(1.06, 0.012) if male else n(0.96, 0.012)) - 0.035 * np.clip(links.pitch, -2.5, 2.5)),
        chin_width=float(n(0.10, 0.012) if male else n(0.06, 0.01)),
        brow_thickness=float(n(0.024, 0.003) if male else n(0.013, 0.002)),
        # the hair's cut follows the variant: sideburn drop (male), where long hair ends (female)
        hair_length=float(np.clip(0.025 + 0.025 * links.variant + n(0, 0.004), 0.0, 0.05) if male
                          else np.clip(0.45 + 0.07 * links.variant + n(0, 0.006), 0.38, 0.52)),
        long_hair=not male,
        neck_width=float(n(0.13, 0.008) if male else n(0.10, 0.008)),
        grey=float(grey),
        wrinkles=float(within(wrinkle_range)),
        n_forehead_lines=(0, 2, 3)[age],
        sag=float(within(sag_range)),
        nose_width=float(n(0.040, 0.002) + 0.009 * links.variant),
        cheek_width=float(np.clip(n(0.25, 0.012), 0.22, 0.28)),
        eye_spacing=float(n(0.105, 0.003) + 0.011 * links.brightness),
        eye_size=float(n(0.046, 0.004)),
        nose_length=float(n(0.10, 0.008)),
        mouth_width=float(n(0.075, 0.003) + 0.005 * np.clip(links.pitch_range, -2.5, 2.5)),
        lip_thickness=float(n(0.017, 0.002)),
        skin=tuple(float(c) for c in skin), hair=tuple(float(c) for c in hair),
        iris=tuple(float(c) for c in IRIS_PALETTE[rng.integers(len(IRIS_PALETTE))]),
        lips=tuple(float(c) for c in lips), background=tuple(float(c) for c in background),
        clothes=tuple(float(c) for c in clothes),
        offset=(float(rng.uniform(-0.015, 0.015)), float(rng.uniform(-0.015, 0.015))),
        scale=float(rng.uniform(0.96, 1.04)),
        fringe=float(np.clip(-0.005 + 0.03 * links.brightness + n(0, 0.004), -0.04, 0.03)),
    )


def _catmull_rom(points: np.ndarray, steps: int = 8) -> np.ndarray:
    """A closed Catmull-Rom curve through `points` (P, 2)."""
    p = np.asarray(points, np.float64)
    t = np.linspace(0, 1, steps, endpoint=False)[:, None]
    out = []
    for i in range(len(p)):
        p0, p1, p2, p3 = p[i - 1], p[i], p[(i + 1) % len(p)], p[(i + 2) % len(p)]
        out.append(0.5 * (2 * p1 + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                          + (-p0 + 3 * p1 - 3 * p2 + p3) * t ** 3))
    return np.concatenate(out)


def _rgb(colour, factor: float = 1.0) -> tuple:
    return tuple(int(np.clip(round(c * factor), 0, 255)) for c in colour)


def _mix(a, b, w: float) -> tuple:
    return tuple(int(round((1 - w) * x + w * y)) for x, y in zip(a, b))


class _Canvas:
    """A supersampled Pillow canvas that takes face-local coordinates (see the module docstring)."""

    def __init__(self, p: FaceParams, size: int):
        self.p = p
        self.size = size * SUPERSAMPLE
        self.cx, self.cy = 0.5 + p.offset[0], FACE_CENTRE_Y + p.offset[1]
        self.image = Image.new("RGB", (self.size, self.size), _rgb(p.background))
        self.draw = ImageDraw.Draw(self.image)

    def img(self, points) -> np.ndarray:
        """Face-local points -> image units [0, 1]."""
        q = np.asarray(points, np.float64).reshape(-1, 2)
        return np.stack([self.cx + self.p.scale * q[:, 0], self.cy + self.p.scale * q[:, 1]], axis=1)

    def px(self, points) -> list[tuple[float, float]]:
        return [tuple(v) for v in self.img(points) * self.size]

    def ellipse(self, centre, rx, ry, fill) -> None:
        (x, y), = self.px([centre])
        rx, ry = rx * self.p.scale * self.size, ry * self.p.scale * self.size
        self.draw.ellipse((x - rx, y - ry, x + rx, y + ry), fill=fill)

    def line(self, points, colour, width) -> None:
        self.draw.line(self.px(points), fill=colour, width=max(1, int(round(width * self.p.scale * self.size))),
                       joint="curve")

    def polygon(self, points, **style) -> None:
        self.draw.polygon(self.px(points), **style)


@dataclasses.dataclass(frozen=True)
class _Geometry:
    """Where the features sit, in face-local units (shared by the drawing and the landmarks)."""

    cheek: tuple
    mid: tuple
    jaw: tuple
    chin_side: tuple
    chin: tuple
    outline: np.ndarray
    eye_y: float
    tip_y: float
    mouth_y: float


def _geometry(p: FaceParams) -> _Geometry:
    L, W = p.face_length, p.cheek_width
    # face outline (right half, top to chin), mirrored; the landmarks use some of its control points
    jaw = (p.jaw_ratio * W + 0.02 * p.sag, 0.17 * L + 0.025 * p.sag)
    cheek = (W, 0.02)
    mid = (0.5 * (W + jaw[0]) + 0.012, 0.5 * (cheek[1] + jaw[1]))
    chin_side = (p.chin_width, 0.262 * L)
    chin = (0.0, 0.285 * L)
    right = [(0.0, -0.31), (0.6 * W, -0.295), (0.92 * W, -0.22), (W, -0.10), cheek, mid, jaw, chin_side]
    outline = right + [chin] + [(-x, y) for x, y in reversed(right[1:])]
    tip_y = p.nose_length * L
    return _Geometry(cheek, mid, jaw, chin_side, chin, _catmull_rom(np.array(outline)),
                     eye_y=-0.04, tip_y=tip_y, mouth_y=tip_y + 0.07 * L)


def _draw_body(c: _Canvas, p: FaceParams, g: _Geometry) -> None:
    """Long hair (behind everything), shoulders, neck, ears, then the face itself."""
    W, hair = p.cheek_width, _rgb(p.hair)
    if p.long_hair:
        back_w = W + 0.07
        arc = [(back_w * np.cos(a), -0.14 + 0.24 * np.sin(a)) for a in np.linspace(np.pi, 2 * np.pi, 17)]
        end = p.hair_length
        c.polygon(arc + [(back_w + 0.01, end - 0.04), (back_w - 0.03, end), (-back_w + 0.03, end),
                         (-back_w - 0.01, end - 0.04)], fill=hair)
    c.ellipse((0.0, 0.64), 0.42, 0.21, _rgb(p.clothes))
    nw = p.neck_width
    c.polygon([(-nw, 0.1), (nw, 0.1), (nw * 1.1, 0.47), (-nw * 1.1, 0.47)], fill=_rgb(p.skin, 0.85))
    c.ellipse((0.0, 0.46), nw * 1.1, 0.03, _rgb(p.skin, 0.85))
    if not p.long_hair:
        for side in (-1, 1):
            c.ellipse((side * (W + 0.008), -0.005), 0.032, 0.058, _rgb(p.skin, 0.9))
    c.polygon(g.outline, fill=_rgb(p.skin), outline=_rgb(p.skin, 0.82))
    c.line(list(g.outline) + [g.outline[0]], _rgb(p.skin, 0.88), 0.006)


def _draw_age(c: _Canvas, p: FaceParams, g: _Geometry) -> None:
    """Forehead lines, nasolabial folds, crow's feet, eye bags."""
    skin, eye_y, tip_y, mouth_y = _rgb(p.skin), g.eye_y, g.tip_y, g.mouth_y
    wrinkle = _mix(skin, _rgb(p.skin, 0.55), p.wrinkles)
    for k in range(p.n_forehead_lines):
        y = -0.172 + 0.021 * k
        xs = np.linspace(-0.11, 0.11, 9)
        c.line([(x, y - 0.012 * (1 - (x / 0.11) ** 2)) for x in xs], wrinkle, 0.008)
    if p.wrinkles > 0:
        for side in (-1, 1):
            xs = np.linspace(0, 1, 6)
            c.line([(side * (p.nose_width + 0.012 + 0.03 * t + 0.008 * np.sin(np.pi * t)),
                     tip_y - 0.01 + (mouth_y + 0.03 - tip_y) * t) for t in xs], wrinkle, 0.008)
            if p.wrinkles > 0.55:
                ox = side * (p.eye_spacing + p.eye_size + 0.01)
                for dy in (-0.012, 0.0, 0.012):
                    c.line([(ox, eye_y + dy * 0.5), (ox + side * 0.022, eye_y + dy * 1.6)], wrinkle, 0.006)
    if p.sag > 0.25:
        bag = _mix(skin, _rgb(p.skin, 0.7), min(1.0, p.sag))
        for side in (-1, 1):
            ex = side * p.eye_spacing
            xs = np.linspace(-0.8, 0.8, 7)
            c.line([(ex + x * p.eye_size, eye_y + 0.03 + 0.012 * (1 - x * x)) for x in xs], bag, 0.007)


def _draw_eyes_and_brows(c: _Canvas, p: FaceParams, eye_y: float) -> tuple[list, list]:
    """(eye landmarks, brow landmarks) after drawing both; brows are hair-coloured, a little darker."""
    ew, eh = p.eye_size, p.eye_size * 0.5
    eye_marks = []
    for side in (-1, 1):
        ex = side * p.eye_spacing
        c.ellipse((ex, eye_y), ew, eh, (236, 234, 228))
        c.ellipse((ex, eye_y), eh * 0.95, eh * 0.95, _rgb(p.iris))
        c.ellipse((ex, eye_y), eh * 0.42, eh * 0.42, (15, 12, 12))
        xs = np.linspace(-1, 1, 9)
        c.line([(ex + x * ew * 1.05, eye_y - eh * np.sqrt(max(0.0, 1 - x * x)) * 1.05) for x in xs],
               (40, 30, 28), 0.009)
        eye_marks += [(ex + side * ew, eye_y), (ex, eye_y - eh), (ex - side * ew, eye_y), (ex, eye_y + eh)]
    brow_y = eye_y - 0.065
    arch = 0.012 if p.long_hair else 0.006
    brow_marks = []
    for side in (-1, 1):
        inner, outer = side * (p.eye_spacing - 0.055), side * (p.eye_spacing + 0.058)
        top = (side * (p.eye_spacing + 0.01), brow_y - arch)
        ts = np.linspace(0, 1, 9)
        pts = [((1 - t) ** 2 * inner + 2 * t * (1 - t) * top[0] + t ** 2 * outer,
                (1 - t) ** 2 * brow_y + 2 * t * (1 - t) * (top[1] - arch) + t ** 2 * (brow_y + 0.006)) for t in ts]
        c.line(pts, _rgb(p.hair, 0.8), p.brow_thickness)
        brow_marks += [(inner, brow_y), (top[0], brow_y - arch), (outer, brow_y + 0.006)]
    return eye_marks, brow_marks


def _draw_nose_and_mouth(c: _Canvas, p: FaceParams, g: _Geometry) -> None:
    nwid, tip_y, eye_y = p.nose_width, g.tip_y, g.eye_y
    c.line([(-nwid, tip_y - 0.012), (-nwid * 0.6, tip_y + 0.008), (0.0, tip_y + 0.012),
            (nwid * 0.6, tip_y + 0.008), (nwid, tip_y - 0.012)], _rgb(p.skin, 0.75), 0.007)
    for side in (-1, 1):
        c.ellipse((side * nwid * 0.45, tip_y + 0.002), nwid * 0.28, 0.008, _rgb(p.skin, 0.45))
        c.line([(side * 0.018, eye_y + 0.02), (side * 0.022, tip_y - 0.03), (side * nwid, tip_y - 0.012)],
               _rgb(p.skin, 0.9), 0.005)
    mw, lt, mouth_y = p.mouth_width, p.lip_thickness, g.mouth_y
    c.polygon([(-mw, mouth_y), (-0.45 * mw, mouth_y - lt), (0.0, mouth_y - 0.7 * lt), (0.45 * mw, mouth_y - lt),
               (mw, mouth_y)], fill=_rgb(p.lips, 0.92))
    c.polygon([(mw, mouth_y), (0.5 * mw, mouth_y + 1.2 * lt), (-0.5 * mw, mouth_y + 1.2 * lt), (-mw, mouth_y)],
              fill=_rgb(p.lips))
    c.line([(-mw, mouth_y), (0.0, mouth_y + 0.002), (mw, mouth_y)], _rgb(p.lips, 0.5), 0.005)


def _draw_hair_cap(c: _Canvas, p: FaceParams) -> None:
    """The cap over the forehead (with sideburns), long hair's side strands over the face edge, and
    a few strands for texture."""
    W, hair = p.cheek_width, _rgb(p.hair)
    hair_top, hairline = -0.38, -0.2 + p.fringe
    cap_w = W + 0.03
    arc = [(cap_w * np.cos(a), -0.16 + 0.22 * np.sin(a)) for a in np.linspace(np.pi, 2 * np.pi, 19)]
    sideburn = -0.08 + (0.0 if p.long_hair else p.hair_length)
    hairline_pts = [(W - 0.025, -0.15), (0.75 * W, hairline - 0.01), (0.35 * W, hairline + 0.004), (0.0, hairline),
                    (-0.35 * W, hairline + 0.004), (-0.75 * W, hairline - 0.01), (-W + 0.025, -0.15)]
    c.polygon(arc + [(cap_w, sideburn), (W - 0.012, sideburn)] + hairline_pts
              + [(-W + 0.012, sideburn), (-cap_w, sideburn)], fill=hair)
    if p.long_hair:
        for side in (-1, 1):
            c.polygon([(side * (W - 0.035), -0.16), (side * (W + 0.07), -0.12),
                       (side * (W + 0.075), p.hair_length - 0.02), (side * (W + 0.02), p.hair_length - 0.05),
                       (side * (W - 0.01), 0.05)], fill=hair)
    for k in range(-3, 4):
        x0 = k * cap_w / 4.5
        c.line([(x0 * 0.7, hair_top + 0.05), (x0, hairline - 0.02)], _rgb(p.hair, 0.8), 0.004)


def _landmarks(p: FaceParams, g: _Geometry, eye_marks: list, brow_marks: list) -> list:
    """The N_LANDMARKS points in LANDMARK_NAMES order, face-local."""
    contour = [g.cheek, g.mid, g.jaw, g.chin_side, g.chin]
    contour = [(-x, y) for x, y in contour[:4]] + [g.chin] + [(x, y) for x, y in reversed(contour[:4])]
    nwid, tip_y, mw, lt, mouth_y = p.nose_width, g.tip_y, p.mouth_width, p.lip_thickness, g.mouth_y
    marks = contour + brow_marks + eye_marks + [(0.0, g.eye_y), (0.0, tip_y + 0.012), (-nwid, tip_y - 0.012),
                                                (nwid, tip_y - 0.012)]
    return marks + [(-mw, mouth_y), (0.0, mouth_y - 0.7 * lt), (mw, mouth_y), (0.0, mouth_y + 1.2 * lt),
                    (0.0, mouth_y)]


def render_face(p: FaceParams, size: int = IMAGE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """The face image (size, size, 3) uint8 and its landmarks (N_LANDMARKS, 2) float32, (x, y) in [0, 1]."""
    canvas, geometry = _Canvas(p, size), _geometry(p)
    _draw_body(canvas, p, geometry)
    _draw_age(canvas, p, geometry)
    eye_marks, brow_marks = _draw_eyes_and_brows(canvas, p, geometry.eye_y)
    _draw_nose_and_mouth(canvas, p, geometry)
    _draw_hair_cap(canvas, p)
    out = np.asarray(canvas.image.reduce(SUPERSAMPLE), np.uint8)  # box filter: antialiasing
    landmarks = canvas.img(_landmarks(p, geometry, eye_marks, brow_marks)).astype(np.float32)
    assert len(landmarks) == N_LANDMARKS
    return out, landmarks


# ---- trait estimation from pixels --------------------------------------------------------------

# Fixed regions of the 64x64 image, in [0, 1] units: (x0, x1, y0, y1).
_BACKGROUND_PATCHES = ((0.0, 0.08, 0.0, 0.08), (0.92, 1.0, 0.0, 0.08))
_HAIR_CAP = (0.42, 0.58, 0.14, 0.23)          # always inside the hair cap (above the hairline)
_LONG_HAIR_BANDS = ((0.23, 0.28, 0.77, 0.83), (0.72, 0.77, 0.77, 0.83))  # beside the neck, below the jaw
# Greying thresholds on the hair's mean RGB level (base colours are dark, silver is ~203).
_GREY_YOUNG_MAX, _GREY_MIDDLE_MAX = 84.0, 160.0


def _region(image: np.ndarray, box) -> np.ndarray:
    h, w = image.shape[:2]
    x0, x1, y0, y1 = box
    return image[int(round(y0 * h)):int(round(y1 * h)), int(round(x0 * w)):int(round(x1 * w))].reshape(-1, 3)


def face_measurements(image: np.ndarray) -> dict:
    """Pixel measurements of a face image (H, W, 3), uint8 or float in [0, 1]."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
    if image.shape[:2] != (IMAGE_SIZE, IMAGE_SIZE):
        image = np.asarray(Image.fromarray(image).resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR))
    image = image.astype(np.float64)
    background = np.median(np.concatenate([_region(image, b) for b in _BACKGROUND_PATCHES]), axis=0)
    hair = np.median(_region(image, _HAIR_CAP), axis=0)
    band = np.concatenate([_region(image, b) for b in _LONG_HAIR_BANDS])
    to_hair = np.linalg.norm(band - hair, axis=1)
    to_background = np.linalg.norm(band - background, axis=1)
    return {"long_hair": float((to_hair < to_background).mean()), "hair_level": float(hair.mean()),
            "hair_chroma": float(hair.max() - hair.min())}


def estimate_face_traits(image: np.ndarray) -> dict:
    """Gender (0 male, 1 female) and age bucket (0 young, 1 middle, 2 old) from pixels alone.

    Gender: whether the pixels beside the neck, below the jaw, look like the hair (long hair) or
    like the background. Age: how grey the hair is (its mean RGB level). Also returns the
    measurements (`long_hair`, `hair_level`, `hair_chroma`).
    """
    m = face_measurements(image)
    gender = int(m["long_hair"] > 0.5)
    age = 0 if m["hair_level"] <= _GREY_YOUNG_MAX else 1 if m["hair_level"] <= _GREY_MIDDLE_MAX else 2
    return {"gender": gender, "age": age, **m}
