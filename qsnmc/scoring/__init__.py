"""Scoring: the competition's official metrics and spike detection, the scoring of a
run's predictions, validation scores on held-out training data, and ranking tables.

Plugins use the names re-exported at the package root (:mod:`qsnmc`). Never imports
:mod:`qsnmc.harness` or :mod:`qsnmc.cli`.
"""
