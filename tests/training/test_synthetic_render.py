"""The synthetic corpus stays bit-identical for a seed: the drawn faces and landmarks of 24
identities hash to the value recorded before `render_face` was split into drawing steps
(commit 6059761). A change here changes every corpus, and so every trained model's numbers."""

from __future__ import annotations

import hashlib

from speech2face.training.data.synthetic import draw_identity
from speech2face.training.data.synthetic_face import N_LANDMARKS, render_face

RECORDED = "0031361162b9292a83d1ba204e5617d4f7800e6000b341cef25a86e288aca025"


def test_faces_and_landmarks_are_bit_identical_for_a_seed():
    digest = hashlib.sha256()
    for index in range(24):
        image, marks = render_face(draw_identity(3, index).face)
        assert image.shape == (64, 64, 3) and marks.shape == (N_LANDMARKS, 2)
        digest.update(image.tobytes())
        digest.update(marks.tobytes())
    assert digest.hexdigest() == RECORDED
