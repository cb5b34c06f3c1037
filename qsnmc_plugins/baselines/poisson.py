"""Rate-matched Poisson baseline: the chance level of the coincidence factor."""
from __future__ import annotations

import zlib

import numpy as np

from qsnmc import Model, Stimulus, TrainingData, fit_record


class RateMatchedPoisson(Model):
    """Independent Poisson trains at the mean training firing rate (one per repetition)."""

    name = "poisson"
    description = "rate-matched Poisson train (chance level, Gamma ~ 0)"
    typical_fit_s = 0.1  # s at budget 1, one core: orders a run's jobs

    def fit(self, train: TrainingData) -> dict:
        """The mean recorded rate over every training repetition (Hz); no settings, nothing held out."""
        n_spikes = sum(len(t) for s in train.stimuli for t in s.spike_times_s)
        time_s = sum((s.window_s[1] - s.window_s[0]) * s.n_repetitions for s in train.stimuli)
        self.rate_Hz = n_spikes / time_s
        return fit_record(settings={}, fitted={"rate_Hz": self.rate_Hz})

    def predict(self, stimulus: Stimulus) -> list[np.ndarray]:
        """One independent train per repetition (s), one random stream per stimulus and seed."""
        rng = np.random.default_rng([self.seed, zlib.crc32(stimulus.name.encode())])
        start, stop = stimulus.window_s
        trains = []
        for _ in range(stimulus.n_repetitions):
            n = rng.poisson(self.rate_Hz * (stop - start))
            trains.append(np.unique(rng.uniform(start, stop, n)))
        return trains
