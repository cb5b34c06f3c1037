"""The embedded default challenge in ``reference_data/embedded`` is complete and self-consistent."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from qsnmc.challenges.store import ChallengeError, load_challenge
from qsnmc import intrinsic_reliability
from qsnmc import spike_times_from_voltage

EMBEDDED = Path(__file__).resolve().parent.parent / "reference_data" / "embedded"


@pytest.fixture(scope="module")
def challenge(request):
    assert (EMBEDDED / "manifest.json").is_file(), (
        f"{EMBEDDED} is missing: run python reference_data/generate.py"
    )
    return request.getfixturevalue("embedded_challenge")  # loaded once per session, every file's sha256 verified


def test_layout_and_shapes(challenge):
    assert challenge.name == "embedded"
    assert challenge.delta_s == 0.004 and challenge.threshold_mV == 0.0
    assert [s.name for s in challenge.stimuli] == ["A"]
    s = challenge.stimuli[0]
    assert s.dt_s == pytest.approx(1e-4)  # 10 kHz
    assert s.current_pA.shape == (600_000,)  # 60 s
    assert np.all(np.isfinite(s.current_pA))
    assert s.n_repetitions == 13
    assert s.train_window_s == (0.0, 39.0) and s.test_window_s == (39.0, 60.0)
    assert s.train_voltage_mV.shape == (13, 390_000)
    assert len(s.train_spikes_s) == 13 and len(s.test_spikes_s) == 13
    # a plausible recording: resting near -65 mV, spikes overshooting 0 mV
    assert -75 < np.median(s.train_voltage_mV) < -50
    assert s.train_voltage_mV.max() > 20


def test_folder_is_compact():
    size = sum(p.stat().st_size for p in EMBEDDED.iterdir() if p.is_file())
    assert size <= 15 * 2**20


def test_training_spikes_are_the_detector_output_on_the_stored_voltage(challenge):
    s = challenge.stimuli[0]
    detected = spike_times_from_voltage(s.train_voltage_mV, s.dt_s, challenge.threshold_mV, t0_s=s.train_window_s[0])
    for rep, (stored, found) in enumerate(zip(s.train_spikes_s, detected)):
        assert stored.shape == found.shape, f"repetition {rep}"
        np.testing.assert_allclose(stored, found, rtol=0, atol=1e-9)


def test_rates_are_realistic(challenge):
    s = challenge.stimuli[0]
    for trains, (a, b) in ((s.train_spikes_s, s.train_window_s), (s.test_spikes_s, s.test_window_s)):
        rates = np.array([len(t) for t in trains]) / (b - a)
        assert np.all((rates > 3) & (rates < 20)), rates
        assert all(np.all((t >= a) & (t <= b)) for t in trains)


def test_reliability_matches_manifest_and_is_cell_like(challenge):
    s = challenge.stimuli[0]
    a, b = s.test_window_s
    r = intrinsic_reliability(s.test_spikes_s, challenge.delta_s, duration=b - a)
    assert r == pytest.approx(challenge.manifest["reliability"]["A"], abs=1e-12)
    assert r == pytest.approx(challenge.reliability("A"), abs=1e-12)
    assert 0.7 <= r <= 0.9
    assert challenge.manifest["provenance"]["measured"]["reliability_test"] == pytest.approx(r, abs=1e-12)


def test_provenance_records_the_generation(challenge):
    prov = challenge.manifest["provenance"]
    assert prov["generator"] == "reference_data/generate.py"
    assert isinstance(prov["seed"], int)
    assert "Pospischil" in prov["model"]["citation"]
    assert prov["model"]["parameters"]["g_M_mS_per_cm2"] > 0
    assert prov["integration"]["simulator"].startswith("Brian2")
    assert prov["current"]["segments"][0]["start_s"] == 0.0


def test_training_data_hides_the_test_window(challenge):
    train = challenge.training_data()
    (stim,) = train.stimuli
    assert stim.window_s == (0.0, 39.0)
    assert all(t.size == 0 or t.max() < 39.0 for t in stim.spike_times_s)


def test_corrupted_public_file_is_named(tmp_path):
    copy = tmp_path / "embedded"
    shutil.copytree(EMBEDDED, copy)
    public = copy / "public.npz"
    data = bytearray(public.read_bytes())
    data[len(data) // 2] ^= 0xFF
    public.write_bytes(bytes(data))
    with pytest.raises(ChallengeError, match="public.npz"):
        load_challenge(copy)
