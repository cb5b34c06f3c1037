"""One conformance test over every discovered model (sbibm's rule): each built-in and each submission
passes :func:`qsnmc.testing.check_model`, the checks a plugin author runs in their own package. The
models come from discovery, not from a list, so a new built-in cannot escape them."""
from __future__ import annotations

import pytest

from conftest import PROJECT
from qsnmc import Model, NotFittedError
from qsnmc.harness.discovery import discover_models
from qsnmc.testing import check_model, parametrize_models, synthetic_challenge

SUBMISSIONS = PROJECT / "submissions"
@pytest.fixture(scope="module")
def challenge():
    return synthetic_challenge()


def test_every_model_loads():
    """Discovery in its isolated worker finds every model and none fails to load."""
    entries = discover_models(SUBMISSIONS)
    assert entries, "no models found"
    broken = {e.name: e.error for e in entries if not e.ok}
    assert not broken, broken


@parametrize_models(SUBMISSIONS)
def test_predict_before_fit_raises_not_fitted_error(model_class, challenge):
    if not issubclass(model_class, Model):
        pytest.skip("the fitted-state guard is qsnmc.Model's")
    with pytest.raises(NotFittedError, match=repr(model_class.name)):
        model_class(seed=0, budget=0.02).predict(challenge.test_stimuli()[0])


@pytest.mark.slow
@parametrize_models(SUBMISSIONS)
def test_model_conforms(model_class, challenge):
    check_model(model_class, challenge=challenge)
