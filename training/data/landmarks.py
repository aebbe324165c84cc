"""Face landmarks for the face decoder's targets: dlib's 68-point shape predictor (iBUG 300-W).

Why dlib: its prebuilt wheel (`dlib-bin`) installs from PyPI without a compiler, and the
`face-recognition-models` wheel carries the trained 68-point model inside the package, so nothing
is downloaded at run time. MediaPipe's current wheels ship no face model (its face landmarker
downloads a .task file) and pull in OpenCV and a newer NumPy. Both are the `data` extra.

Faces come from crops already centred on a face (AVSpeech's face centre, VoxCeleb's face tracks):
the HOG detector looks for the face inside the crop, and where it finds none the crop itself is the
face box (`box` says which). Landmarks are (x, y) in [0, 1] of the crop, like the synthetic corpus's.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

N_LANDMARKS = 68
INSTALL_HINT = "pip install 'speech2face[data]' (dlib-bin and face-recognition-models)"


class LandmarkerMissing(ImportError):
    pass


def _model_path() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")  # not imported: it needs pkg_resources
    if spec is None or not spec.submodule_search_locations:
        raise LandmarkerMissing(f"face landmarks need the 68-point model: {INSTALL_HINT}")
    return Path(list(spec.submodule_search_locations)[0]) / "models" / "shape_predictor_68_face_landmarks.dat"


@functools.lru_cache(maxsize=1)
def _dlib_models():
    try:
        import dlib
    except ImportError:
        raise LandmarkerMissing(f"face landmarks need dlib: {INSTALL_HINT}") from None
    return dlib, dlib.get_frontal_face_detector(), dlib.shape_predictor(str(_model_path()))


def check_available() -> None:
    """Raises LandmarkerMissing (naming the install command) unless the detector can load."""
    _dlib_models()


def face_landmarks(crop: np.ndarray) -> tuple[np.ndarray, str]:
    """(68, 2) float32 (x, y) in [0, 1] of `crop` (uint8 H x W x 3), and the box used ('detected'
    or 'crop')."""
    dlib, detector, predictor = _dlib_models()
    image = np.ascontiguousarray(crop, dtype=np.uint8)
    h, w = image.shape[:2]
    found = detector(image, 1)
    if found:
        box, source = max(found, key=lambda r: r.width() * r.height()), "detected"
    else:
        box, source = dlib.rectangle(0, 0, w - 1, h - 1), "crop"
    shape = predictor(image, box)
    points = np.array([[shape.part(i).x, shape.part(i).y] for i in range(shape.num_parts)], np.float32)
    return np.clip(points / np.array([w, h], np.float32), 0.0, 1.0), source
