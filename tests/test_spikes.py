import numpy as np
import pytest

from qsnmc import spike_times_from_voltage


def test_one_spike_per_upward_crossing_with_interpolation():
    v = np.array([-60, -10, 10, 30, 5, -5, -20, 20, -30], dtype=float)
    t = spike_times_from_voltage(v, dt_s=0.001)
    # crossings between samples 1-2 (at 1.5) and 6-7 (at 6.5)
    assert t == pytest.approx([0.0015, 0.0065])


def test_no_double_count_while_above_threshold():
    v = np.array([-60, 10, 5, 20, 1, 30, -60], dtype=float)
    assert len(spike_times_from_voltage(v, 0.0001)) == 1


def test_threshold_and_offset_and_2d():
    v = np.array([[-60, -40, -20, -60], [-60, -60, -60, -60]], dtype=float)
    out = spike_times_from_voltage(v, 0.001, threshold_mV=-30.0, t0_s=39.0)
    assert len(out) == 2 and out[0] == pytest.approx([39.0015]) and out[1].size == 0


def test_starting_above_threshold_is_not_a_spike():
    v = np.array([10, 20, -60, 10], dtype=float)
    assert spike_times_from_voltage(v, 1.0) == pytest.approx([2.857142857], rel=1e-6)
