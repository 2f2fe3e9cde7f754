"""The real 1024 px model end to end (slow: minutes on a 2-core CPU; `pytest -m slow`).

A held-out studio portrait goes through the default preset, and what a user relies on is checked
with networks the optimiser never sees: the reconstruction is the same person by dlib's rule and
close by PSNR / LPIPS-Alex; a smile of one sigma widens the mouth (dlib's landmarks) and keeps the
person. Thresholds sit below the figures measured in benchmarks/README.md, not at them.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.shared]


def _mouth_width(image: np.ndarray) -> float:
    """Mouth corners' distance (landmarks 48, 54) over the outer eye corners' (36, 45)."""
    from latentlab.faces import detect_landmarks

    lm = detect_landmarks(image).landmarks
    return float(np.linalg.norm(lm[54] - lm[48]) / np.linalg.norm(lm[45] - lm[36]))


@pytest.fixture(scope="module")
def tuned(shared_dir):
    import latentlab as ll

    photo = shared_dir / "photos" / "portraits" / "022f.jpg"
    if not photo.is_file():
        pytest.skip(f"{photo} is missing")
    G = ll.load_generator("ffhq-mobile", "cpu")
    return ll.project(photo, G, cache=False, progress=False)


def test_default_preset_gives_the_person_back(tuned):
    m = tuned.metrics
    assert tuned.tuning is not None and m["tuning_steps"] > 0
    assert m["dlib_same_person"] is True and m["dlib_distance"] < 0.25
    assert m["psnr"] > 30 and m["lpips_alex"] < 0.06
    assert m["pivot_dlib_distance"] > m["dlib_distance"]  # tuning, not the projection alone, gets there
    pasted = tuned.paste().array
    assert pasted.shape == tuned.original.shape


def test_a_one_sigma_smile_widens_the_mouth_and_keeps_the_person(tuned):
    from latentlab.metrics import identity_metrics_dlib

    smiling = tuned.edit(smile="1s")
    before, after = _mouth_width(tuned.array), _mouth_width(smiling.array)
    assert after > 1.05 * before
    ident = identity_metrics_dlib(tuned.target.array, smiling.array)
    assert ident["dlib_same_person"] and ident["dlib_distance"] < 0.35


def test_the_evaluation_measures_the_smile_and_draws_edits_and_crops(tuned, tmp_path):
    """What `latentlab evaluate` adds per photo: the smile's mouth widening (checked against the
    API's own edit, measured here), its identity distance, the edit strip and the 1:1 crops."""
    from latentlab.engine.evaluate import CROP_SIDE, STRIP_EDITS, edit_outputs
    from latentlab.faces import detect_landmarks
    from latentlab.faces.attributes import mouth_measures
    from latentlab.imageio import load_image, save_image
    from latentlab.metrics import identity_metrics_dlib

    tuned.save(tmp_path / "latent.npz")
    save_image(tuned.target.array, tmp_path / "aligned.png")
    out = edit_outputs(tuned.G, "ffhq-mobile", tmp_path)
    smiling = tuned.edit(smile="1s").array
    width = [mouth_measures(detect_landmarks(x).landmarks)["mouth_width"] for x in (tuned.array, smiling)]
    gain = 100 * (width[1] / width[0] - 1)
    assert out["smile_gain_pct"] == pytest.approx(gain, abs=0.5) and out["smile_gain_pct"] > 5
    assert out["smile_dlib_distance"] == pytest.approx(
        identity_metrics_dlib(tuned.target.array, smiling)["dlib_distance"], abs=1e-3)
    assert load_image(tmp_path / "edits.png").shape == (256, 256 * (1 + len(STRIP_EDITS)), 3)
    assert load_image(tmp_path / "crops.png").shape == (CROP_SIDE, 3 * CROP_SIDE, 3)
    assert edit_outputs(tuned.G, "ffhq-mobile", tmp_path) == out  # kept in edits.json
