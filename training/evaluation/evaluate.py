"""`s2f eval`: the paper's evaluation on held-out identities never seen in training.

Speech-to-face retrieval: each held-out clip's predicted feature queries a gallery of the
true faces' features (one per identity): R@1/2/5/10 under L1, L2 and cosine, beside chance.
Attribute agreement: traits read from the face reconstructed from the voice vs from the true
face, by the same trait estimator, as row-normalised confusion matrices; the decoder-only
reconstruction of the true face's feature (the paper's F2F) is the upper bound.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from speech2face.training.checkpoint import Checkpoint
from speech2face.training.evaluation.metrics import KS, chance_at_k, confusion, recall_at_k, sliced_recall_at_k
from speech2face.training.stage_data import VoiceToFace, faces_by_identity, to_image_tensor
from speech2face.training.stages import encode_faces

TRAITS = {"gender": 2, "age": None}
SF2F_GALLERY, SF2F_KS = 100, (1, 5, 10)
BUILTIN_TITLE = "Built-in model: held-out synthetic identities"  # age: number of buckets taken from the data


@torch.no_grad()
def _predict(checkpoint: Checkpoint, dataset: VoiceToFace, batch: int = 64) -> torch.Tensor:
    return torch.cat([checkpoint.voice_encoder(dataset.spectrograms[i:i + batch].float())
                      for i in range(0, len(dataset), batch)])


@torch.no_grad()
def _reconstruct(checkpoint: Checkpoint, features: torch.Tensor, size: int) -> np.ndarray:
    images = torch.cat([checkpoint.face_decoder(features[i:i + 128])[1] for i in range(0, len(features), 128)])
    images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    return (images.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def retrieval_protocols(predicted: np.ndarray, gallery: np.ndarray, truth: np.ndarray) -> dict:
    """Both retrieval protocols on the same features (gallery row i: identity i's true face).

    - ``paper`` (Speech2Face): one gallery of every held-out identity, R@1/2/5/10 under cosine,
      L2 and L1, with the chance row K/N.
    - ``sf2f`` (Bai et al. 2022 and later work): cosine R@1/5/10 within galleries of 100
      identities, averaged over the disjoint slices of the held-out set; chance K/100.
    """
    paper = {metric: {f"R@{k}": v for k, v in recall_at_k(predicted, gallery, truth, metric).items()}
             for metric in ("cosine", "l2", "l1")}
    paper["chance"] = {f"R@{k}": v for k, v in chance_at_k(len(gallery)).items()}
    paper["gallery_size"] = len(gallery)
    recall, slices = sliced_recall_at_k(predicted, gallery, truth, "cosine", SF2F_GALLERY, SF2F_KS)
    size = min(SF2F_GALLERY, len(gallery))
    sf2f = {f"r_at_{k}": recall[k] for k in SF2F_KS}
    sf2f.update({"gallery_size": size, "galleries": slices, "metric": "cosine",
                 "chance": {f"r_at_{k}": v for k, v in chance_at_k(size, SF2F_KS).items()}})
    return {"paper": paper, "sf2f": sf2f}


def evaluate(checkpoint: Checkpoint, pairs, estimate_traits: Callable[[np.ndarray], dict]) -> dict:
    if checkpoint.face_encoder is None:
        raise ValueError("the checkpoint holds no face encoder to build the gallery with")
    faces, _, ids, rows = faces_by_identity(pairs)
    gallery = encode_faces(checkpoint.face_encoder, to_image_tensor(faces, checkpoint.face_encoder.config.image_size))
    dataset = VoiceToFace(pairs, rows, gallery, checkpoint.feature_spec)
    predicted = _predict(checkpoint, dataset)
    truth = np.asarray(dataset.targets)
    result: dict = {"gallery_size": len(ids), "queries": len(dataset)}
    result.update(retrieval_protocols(predicted.numpy(), gallery.numpy(), truth))
    result["r_at_1"] = result["paper"]["cosine"]["R@1"]
    result["chance_at_1"] = result["paper"]["chance"]["R@1"]

    size = faces.shape[1]
    true_traits = [estimate_traits(face) for face in faces]
    from_voice = [estimate_traits(face) for face in _reconstruct(checkpoint, predicted, size)]
    from_face = [estimate_traits(face) for face in _reconstruct(checkpoint, gallery, size)]
    for trait in ("gender", "age"):
        true = np.array([true_traits[row][trait] for row in truth])
        voice = np.array([t[trait] for t in from_voice])
        face = np.array([t[trait] for t in from_face])
        classes = int(max(true.max(), voice.max(), face.max())) + 1
        result[f"{trait}_agreement"] = float((voice == true).mean())
        result[f"{trait}_agreement_face_to_face"] = float((face == np.array([t[trait] for t in true_traits])).mean())
        result[f"{trait}_confusion"] = confusion(true, voice, classes).round(3).tolist()
    return result


def markdown_report(result: dict, title: str) -> str:
    paper, sf2f = result["paper"], result["sf2f"]
    lines = [f"# {title}", "", f"Paper protocol (Speech2Face): one gallery of all {result['gallery_size']} held-out "
             f"identities; {result['queries']} voice queries.", "",
             "| distance | R@1 | R@2 | R@5 | R@10 |", "|---|---|---|---|---|"]
    for metric in ("l2", "l1", "cosine"):
        lines.append(f"| {metric} | " + " | ".join(f"{100 * paper[metric][f'R@{k}']:.2f}" for k in KS) + " |")
    lines.append("| chance | " + " | ".join(f"{100 * paper['chance'][f'R@{k}']:.2f}" for k in KS) + " |")
    lines += ["", f"SF2F protocol (Bai et al. 2022): cosine, galleries of {sf2f['gallery_size']} identities, "
              f"mean over {sf2f['galleries']} disjoint slices.", "",
              "| | R@1 | R@5 | R@10 |", "|---|---|---|---|",
              "| cosine | " + " | ".join(f"{100 * sf2f[f'r_at_{k}']:.2f}" for k in SF2F_KS) + " |",
              "| chance | " + " | ".join(f"{100 * sf2f['chance'][f'r_at_{k}']:.2f}" for k in SF2F_KS) + " |"]
    lines += ["", "| trait | agreement (voice -> face vs true face) | decoder-only upper bound |", "|---|---|---|"]
    for trait in ("gender", "age"):
        agreement, bound = result[f"{trait}_agreement"], result[f"{trait}_agreement_face_to_face"]
        lines.append(f"| {trait} | {agreement:.3f} | {bound:.3f} |")
    for trait in ("gender", "age"):
        lines += ["", f"{trait} confusion (rows: true face, columns: face from voice):", ""]
        lines += ["    " + " ".join(f"{v:.2f}" for v in row) for row in result[f"{trait}_confusion"]]
    return "\n".join(lines) + "\n"
