"""The fitting toolkit's pieces on known answers (qsnmc.settings, qsnmc.fitting, qsnmc.scoring.trains)."""
from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

import qsnmc
from qsnmc import (CountPenalty, Candidate, SettingsError, best_candidate, block_max, block_mean, clip_to_window,
                   curve, fit_record, lowpass, lowpass_bank, portable_exp, samples_per_step, setting, settings_record,
                   settings_schema, spike_window_mask, stretch_reliability)
from qsnmc.fitting.record import check_fit_record
from qsnmc.scoring.validation import HeldOutScore, ValidationScore
from qsnmc.settings import check_overrides, make_settings, schema_of_factory

ROOT = Path(__file__).resolve().parents[1]


def test_lowpass_of_a_step_rises_exponentially_from_steady_state():
    dt, tau = 1e-3, 0.01
    x = np.r_[np.zeros(5), np.ones(200)]
    y = lowpass(x, dt, tau)
    k = np.arange(200)
    np.testing.assert_allclose(y[5:], 1.0 - np.exp(-dt / tau) ** (k + 1), rtol=1e-12)
    assert np.all(y[:5] == 0.0)
    # started at steady state: a constant signal stays constant
    np.testing.assert_allclose(lowpass(np.full(50, 7.0), dt, tau), 7.0, rtol=1e-14)
    bank = lowpass_bank(x, dt, (0.01, 0.1))
    np.testing.assert_array_equal(bank[0], y)
    assert bank.shape == (2, x.size)


def test_lowpass_from_a_given_initial_value_decays_from_it():
    dt, tau = 1e-3, 0.01
    a = np.exp(-dt / tau)
    k = np.arange(100)
    # y_{-1} = 5, input 0: y_k = 5 a^(k + 1); input 2: y_k = 2 + 3 a^(k + 1)
    np.testing.assert_allclose(lowpass(np.zeros(100), dt, tau, initial=5.0), 5.0 * a ** (k + 1), rtol=1e-12)
    np.testing.assert_allclose(lowpass(np.full(100, 2.0), dt, tau, initial=5.0), 2.0 + 3.0 * a ** (k + 1), rtol=1e-12)
    # one initial value per row; None is steady state at the first sample
    rows = lowpass(np.zeros((2, 3)), dt, tau, initial=np.array([[1.0], [-1.0]]))
    np.testing.assert_allclose(rows, [[a, a**2, a**3], [-a, -(a**2), -(a**3)]], rtol=1e-12)
    x = np.r_[3.0, np.ones(20)]
    np.testing.assert_array_equal(lowpass(x, dt, tau, initial=3.0), lowpass(x, dt, tau))
    assert lowpass(np.zeros(0), dt, tau, initial=1.0).shape == (0,)


def test_lowpass_takes_its_decay_factor_from_the_portable_exp():
    """The decay factor has the same bits on every CPU: here a time constant whose factor NumPy's
    and glibc's exp (on CPUs without AVX-512) round one ulp below the portable exp's."""
    dt, tau = 1e-4, 0.010669534767383691
    a = float(portable_exp(np.array([-dt / tau]))[0])
    assert a == 0.9906713049061662
    y = lowpass(np.r_[0.0, np.ones(3)], dt, tau, initial=0.0)  # y_0 = 0, y_1 = 1 - a, y_2 = a (1 - a) + 1 - a
    assert y[1] == 1.0 - a and y[2] == a * (1.0 - a) + (1.0 - a)


def test_spike_window_mask_marks_the_samples_around_each_spike():
    mask = spike_window_mask(np.array([2, 8]), 10, before=1, after=2)
    np.testing.assert_array_equal(np.flatnonzero(mask), [1, 2, 3, 4, 7, 8, 9])
    # overlapping windows merge; spikes outside the samples reach in from the edges
    np.testing.assert_array_equal(np.flatnonzero(spike_window_mask(np.array([-2, 4, 5, 12]), 10, 0, 2)),
                                  [0, 4, 5, 6, 7])
    assert not spike_window_mask(np.zeros(0, dtype=np.int64), 5, 1, 1).any()


def test_block_mean_and_max_of_a_ramp_drop_the_tail():
    ramp = np.arange(10.0)
    np.testing.assert_array_equal(block_mean(ramp, 3), [1.0, 4.0, 7.0])
    np.testing.assert_array_equal(block_max(ramp, 3), [2.0, 5.0, 8.0])
    np.testing.assert_array_equal(block_mean(np.vstack([ramp, -ramp]), 5), [[2.0, 7.0], [-2.0, -7.0]])
    assert samples_per_step(1e-4, 5e-4) == 5 and samples_per_step(1e-3, 1e-4) == 1
    with pytest.raises(ValueError):
        block_mean(ramp, 0)


def test_windows_are_half_open():
    t = np.array([0.9, 1.0, 1.5, 2.0, 2.1])
    np.testing.assert_array_equal(clip_to_window(t, (1.0, 2.0)), [1.0, 1.5])


def test_reliability_of_identical_trains_is_one_and_nan_for_one_repetition():
    train = np.sort(np.random.default_rng(0).uniform(0.0, 10.0, 50))
    assert stretch_reliability([train, train, train], (0.0, 10.0), 0.004) == pytest.approx(1.0)
    assert np.isnan(stretch_reliability([train], (0.0, 10.0), 0.004))


def _score(counts: list[tuple[float, float, float]]) -> ValidationScore:
    """Stimuli of (R, predicted count, recorded count) with Gamma 0.5 each."""
    return ValidationScore(tuple(HeldOutScore(f"s{i}", np.full(2, 0.5), r, p, n, r >= 0.3)
                                 for i, (r, p, n) in enumerate(counts)))


def test_count_error_variants_have_their_own_names():
    score = _score([(0.8, 9.0, 9.0), (0.1, 3.0, 1.0)])  # the second stimulus is below the R floor
    assert CountPenalty(1.0, "included").error(score) == 0.0
    assert CountPenalty(1.0, "every").error(score) == pytest.approx(np.log(4 / 2) / 2)
    assert CountPenalty(2.0, "every").objective(score) == pytest.approx(0.5 / 0.8 - 2 * np.log(2) / 2)
    with pytest.raises(ValueError):
        CountPenalty(1.0, "all")


def test_best_candidate_keeps_the_first_of_ties_and_never_nan():
    cands = [Candidate({"a": 1}, None, np.nan), Candidate({"a": 2}, None, 0.5), Candidate({"a": 3}, None, 0.5)]
    assert best_candidate(cands).choice == {"a": 2}


@dataclass(frozen=True)
class _Settings:
    count_penalty: float = setting(0.1, "weight of the count error", min=0.0)
    taus_s: tuple[float, ...] = setting((0.02, 0.2), "filter time constants (s)")
    readout: Literal["fixed", "matched"] = setting("fixed", "how spikes are read out")
    steps: int = setting(100, "training steps", min=1)


def test_settings_are_checked_and_round_trip_through_the_fit_record():
    s = make_settings(_Settings, {"count_penalty": 1, "taus_s": [0.01], "steps": 20.0}, "toy")
    assert s == _Settings(1.0, (0.01,), "fixed", 20)
    rec = fit_record(settings=settings_record(s))
    assert make_settings(_Settings, json.loads(json.dumps(rec))["settings"]) == s
    for bad, words in [({"nope": 1}, "no setting 'nope'"), ({"count_penalty": -1}, "at least 0.0"),
                       ({"readout": "peak"}, "one of ['fixed', 'matched']"), ({"steps": "many"}, "an integer"),
                       ({"steps": True}, "an integer"), ({"taus_s": 0.1}, "a list")]:
        with pytest.raises(SettingsError, match=words.replace("[", r"\[").replace("]", r"\]")):
            make_settings(_Settings, bad, "toy")
    assert settings_schema(_Settings)["readout"]["choices"] == ["fixed", "matched"]


def test_a_model_with_settings_checks_its_overrides():
    class Toy(qsnmc.Model):
        name = "toy"
        Settings = _Settings

    assert Toy(seed=1, budget=0.5, steps=3).settings.steps == 3
    with pytest.raises(SettingsError, match="toy has no setting 'stepz'"):
        Toy(stepz=3)
    assert schema_of_factory(Toy) == settings_schema(_Settings)

    class Plain(qsnmc.Model):
        name = "plain"

    assert schema_of_factory(Plain) == {}
    assert check_overrides(schema_of_factory(Toy), {"steps": 2}) == {"steps": 2}


def test_fit_record_schema_is_checked():
    good = fit_record(settings={}, curves={"loss": curve([0, 1], [2.0, 1.0], "step", "loss")})
    check_fit_record(good)
    with pytest.raises(ValueError, match="keys"):
        check_fit_record({**good, "extra": 1})
    with pytest.raises(ValueError, match="curve"):
        fit_record(settings={}, curves={"loss": {"x": [0], "y": [1, 2], "x_label": "", "y_label": ""}})


def _plugin_module_names(tree: ast.AST) -> set[str]:
    """Names a file binds to plugin modules (``import qsnmc_plugins.gru.model as gm``, ``from qsnmc_plugins.gru import model``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.asname or a.name for a in node.names if a.name.startswith("qsnmc_plugins")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("qsnmc_plugins"):
            names |= {a.asname or a.name for a in node.names}
    return names


def _constant_assignments(path: Path) -> list[str]:
    """Assignments to a plugin module's names: ``setattr(mod, ...)``, ``monkeypatch.setattr(mod, ...)``,
    ``mod.NAME = ...``, and ``setattr(anything, "UPPER_NAME", ...)``."""
    tree = ast.parse(path.read_text(), str(path))
    modules = _plugin_module_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "setattr":
            args = node.args
            on_module = bool(args) and isinstance(args[0], ast.Name) and args[0].id in modules
            upper = len(args) >= 2 and isinstance(args[1], ast.Constant) and str(args[1].value).isupper()
            if on_module or upper:
                found.append(f"{path.name}:{node.lineno} setattr")
        if isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id in modules:
                    found.append(f"{path.name}:{node.lineno} {t.value.id}.{t.attr} =")
    return found


def test_no_code_overrides_a_module_constant():
    """Settings go through each model's constructor; assigning a module's constants is refused."""
    files = [p for d in ("tests", "benchmarks", "qsnmc", "qsnmc_plugins", "submissions") for p in (ROOT / d).rglob("*.py")]
    found = [hit for p in files for hit in _constant_assignments(p)]
    assert not found, "module constants overridden (use the model's Settings instead): " + "; ".join(found)


def test_the_constant_check_catches_an_override(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import qsnmc_plugins.gru.model as m\nsetattr(m, 'STEPS', 3)\nm.COUNT_PENALTY = 1\n"
                   "monkeypatch.setattr(m, name, 2)\nsetattr(obj, 'TAU_S', 1)\nself.A = 1\n")
    assert len(_constant_assignments(bad)) == 4


# ------------------------------------------------------------ least squares independent of the CPU and BLAS
def test_exact_gram_is_the_gram_matrix_and_its_bits_do_not_depend_on_the_row_order():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5000, 4)) * np.array([1.0, 1e3, 1e-3, 7.0])
    g = qsnmc.exact_gram(x)
    np.testing.assert_allclose(g, x.T @ x, rtol=1e-10)
    assert np.array_equal(g, qsnmc.exact_gram(x[rng.permutation(len(x))]))  # exact sums: any order, same bits


def test_linear_least_squares_and_cholesky_solve_recover_known_answers():
    rng = np.random.default_rng(1)
    design = np.column_stack([np.ones(40000), rng.normal(size=40000), rng.normal(size=40000)])  # two chunks
    beta = np.array([2.0, -0.5, 3.0])
    np.testing.assert_allclose(qsnmc.linear_least_squares(design, design @ beta), beta, rtol=1e-9)
    a = np.array([[4.0, 2.0], [2.0, 3.0]])
    np.testing.assert_allclose(qsnmc.cholesky_solve(a, np.array([2.0, 1.0])), np.linalg.solve(a, [2.0, 1.0]))
    with pytest.raises(ValueError, match="zero"):
        qsnmc.linear_least_squares(np.column_stack([np.ones(10), np.zeros(10)]), np.ones(10))


def test_bounded_levenberg_marquardt_fits_an_exponential_and_stops_at_a_bound():
    t = np.linspace(0.0, 1.0, 200)
    y = 3.0 * np.exp(-t / 0.2)

    def residuals(p):
        e = np.exp(-t / p[1])
        return p[0] * e - y, np.column_stack([e, p[0] * e * t / p[1] ** 2])

    fit = qsnmc.bounded_levenberg_marquardt(residuals, np.array([1.0, 0.5]), np.array([0.0, 0.01]), np.array([10, 1]))
    np.testing.assert_allclose(fit, [3.0, 0.2], rtol=1e-8)
    capped = qsnmc.bounded_levenberg_marquardt(residuals, np.array([1.0, 0.5]), np.array([0.0, 0.3]), np.array([10, 1]))
    assert capped[1] == 0.3  # the time constant sits on its lower bound
