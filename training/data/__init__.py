"""Training data sources. `synthetic`: the paired voice/face corpus built here from pip wheels
(eSpeak NG voices, procedurally drawn faces); see SYNTHETIC.md. Real corpora (AVSpeech,
VoxCeleb) are in `speech2face.training.datasets`."""

from speech2face.training.data.synthetic import SyntheticPairs, estimate_face_traits, generate_corpus

__all__ = ["SyntheticPairs", "estimate_face_traits", "generate_corpus"]
