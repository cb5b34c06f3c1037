"""The QSNMC 2007 Challenge A importer: small folders written here in the competition's layout
(well-formed and malformed), the ``qsnmc data import-qsnmc2007`` command, and, where
``../shared/qsnmc2007/challengeA/`` holds the real recordings, the real import."""
from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from qsnmc import load_challenge
from qsnmc.cli.main import main as cli_main
from qsnmc.challenges.qsnmc2007 import import_qsnmc2007
from qsnmc.challenges.textdata import DataImportError

N_ROWS = 2000  # 2 s at 1 kHz
TRAIN = {"00": 2, "04": 2}  # stimulus: repetitions
TEST = {"01": 2}
UNANSWERED = "10"


def _write(path: Path, text: str) -> None:
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)


def _trace_text(current: np.ndarray, voltage: np.ndarray) -> str:
    rows = np.column_stack([np.arange(current.size), current, voltage])
    return "".join(f"{a:24.16e}{b:24.16e}{c:24.16e}\n" for a, b, c in rows)


def _write_stimulus(
    folder: Path, stim: str, n_reps: int, rng: np.random.Generator, *, with_voltage: bool, with_spikes: bool
) -> None:
    current = np.round(rng.normal(200, 150, N_ROWS) / 5) * 5 + 0.625
    spikes_ms = np.sort(rng.choice(np.arange(20, N_ROWS - 5), 30, replace=False))
    spikes_ms = spikes_ms[np.diff(spikes_ms, prepend=-10) > 4]
    for r in range(n_reps):
        rep_current = current + rng.choice([-5.0, 0.0, 0.0, 5.0], N_ROWS)
        voltage = np.round((-65 + rng.normal(0, 1, N_ROWS)) * 256) / 256
        rep_spikes = spikes_ms + (r % 2)
        voltage[rep_spikes + 1] = 30.0
        suffix = ".gz" if r % 2 == 0 else ""  # plain and gzip files mixed, as a user may have them
        shown = voltage if with_voltage else 0 * voltage  # the test files' voltage column is all zeros
        _write(folder / f"{stim}-{r}.voltage{suffix}", _trace_text(rep_current, shown))
        if with_spikes:
            line = "  {:.16e}  3.0000000000000000e+000\n" if with_voltage else "   {:.7e}\n"  # as the originals
            cols = "".join(line.format(t) for t in rep_spikes)
            _write(folder / f"{stim}-{r}.spiketimes{suffix}", cols)


@pytest.fixture(scope="module")
def source_template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("qsnmc2007") / "challengeA"
    rng = np.random.default_rng(7)
    for sub, stims, answered in (("training", TRAIN, True), ("test", TEST, False)):
        (root / sub).mkdir(parents=True)
        for stim, n in stims.items():
            _write_stimulus(root / sub, stim, n, rng, with_voltage=answered, with_spikes=True)
    _write_stimulus(root / "test", UNANSWERED, 2, rng, with_voltage=False, with_spikes=False)
    return root


@pytest.fixture
def source(source_template, tmp_path) -> Path:
    dst = tmp_path / "src" / "challengeA"
    shutil.copytree(source_template, dst)
    return dst


def _lines(path: Path) -> list[str]:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.suffix == ".gz" else data).decode().splitlines(keepends=True)


def _edit_line(path: Path, line: int, text: str) -> None:
    lines = _lines(path)
    lines[line - 1] = text
    _write(path, "".join(lines))


def test_import_builds_a_multi_stimulus_challenge(source, tmp_path):
    dest = import_qsnmc2007(source, tmp_path / "out" / "c07")
    challenge = load_challenge(dest)
    assert challenge.delta_s == 0.002
    assert {s.name for s in challenge.stimuli} == set(TRAIN) | set(TEST)
    train = challenge.training_data()
    assert [s.name for s in train.stimuli] == sorted(TRAIN)
    assert train.delta_s == 0.002 and train.dt_s == 0.001
    first = train.stimulus("00")
    assert first.window_s == (0.0, 2.0) and first.voltage_mV.shape == (2, N_ROWS)
    expected = np.loadtxt(gzip.open(source / "training" / "00-0.spiketimes.gz"))[:, 0] / 1000
    np.testing.assert_allclose(first.spike_times_s[0], expected)
    # the 1/256 mV grid of the recordings is stored without loss (int16 counts)
    raw = np.loadtxt(gzip.open(source / "training" / "00-0.voltage.gz"))
    np.testing.assert_allclose(first.voltage_mV[0], raw[:, 2], atol=1e-6)
    # the current is the mean of the repetitions'
    other = np.loadtxt(source / "training" / "00-1.voltage")
    np.testing.assert_allclose(first.current_pA, (raw[:, 1] + other[:, 1]) / 2, atol=1e-3)
    (stim,) = challenge.test_stimuli()
    assert stim.name == "01" and stim.window_s == (0.0, 2.0) and stim.n_repetitions == 2
    manifest = json.loads((dest / "manifest.json").read_text())
    assert 0 < manifest["reliability"]["01"] <= 1
    prov = manifest["provenance"]
    assert UNANSWERED in prov["skipped_test_stimuli"]
    assert prov["training"]["00"]["current"]["max_abs_deviation_pA"] > 0
    assert prov["training"]["00"]["spike_times_vs_detector"]["matched_within_delta"] == sum(
        prov["training"]["00"]["spike_counts"]
    )
    # the test spike times are hidden: nothing of the test stimulus' answers in public.npz
    public = np.load(dest / "public.npz")
    assert not [k for k in public.files if ".test" in k or k.startswith("01.voltage") or k.startswith("01.train")]
    assert "01.test_spikes_s" in np.load(dest / "hidden.npz").files


def _assert_nothing_written(dest: Path) -> None:
    assert not dest.exists()
    assert not dest.parent.exists() or not list(dest.parent.iterdir())


def _non_numeric(src: Path) -> None:
    _edit_line(src / "training" / "04-1.voltage", 1203, "  1.2020000000000000e+003  abc  -6.5e+001\n")


def _short_line(src: Path) -> None:
    _edit_line(src / "training" / "00-0.voltage.gz", 5, "  4.0  -4.375\n")


def _nan_value(src: Path) -> None:
    _edit_line(src / "test" / "01-1.voltage", 17, "  16.0  nan  0.0\n")


def _truncated_gzip(src: Path) -> None:
    path = src / "training" / "04-0.voltage.gz"
    path.write_bytes(path.read_bytes()[:-200])


def _truncated_rows(src: Path) -> None:
    path = src / "training" / "04-1.voltage"
    _write(path, "".join(_lines(path)[:1500]))


def _index_gap(src: Path) -> None:
    _edit_line(src / "training" / "04-1.voltage", 101, "  1.0100000000000000e+002  5.0  -65.0\n")


def _missing_spike_file(src: Path) -> None:
    (src / "training" / "04-1.spiketimes").unlink()


def _unsorted_spikes(src: Path) -> None:
    path = src / "training" / "04-1.spiketimes"
    lines = _lines(path)
    lines[2], lines[3] = lines[3], lines[2]
    _write(path, "".join(lines))


def _spike_after_end(src: Path) -> None:
    path = src / "test" / "01-1.spiketimes"
    _write(path, "".join(_lines(path)) + "   2.5000000e+03\n")


def _current_in_nA(src: Path) -> None:
    for path in sorted((src / "training").glob("*.voltage*")) + sorted((src / "test").glob("*.voltage*")):
        table = np.loadtxt(gzip.open(path) if path.suffix == ".gz" else path)
        _write(path, _trace_text(table[:, 1] / 1000, table[:, 2]))


MALFORMED = {
    "non-numeric": (_non_numeric, r"04-1\.voltage: line 1203: expected 3 numeric columns, got 'abc'"),
    "short line": (_short_line, r"00-0\.voltage\.gz: line 5: expected 3 numeric columns, got 2"),
    "nan": (_nan_value, r"01-1\.voltage: line 17: expected 3 numeric columns, got a missing value 'nan'"),
    "truncated gzip": (_truncated_gzip, r"04-0\.voltage\.gz: truncated or corrupt gzip"),
    "truncated rows": (_truncated_rows, r"04-1\.voltage: expected 2000 rows, got 1500 \(file truncated\?\)"),
    "index gap": (_index_gap, r"04-1\.voltage: line 101: expected sample index 100"),
    "mismatched repetitions": (_missing_spike_file, r"stimulus 04: .*repetitions \[0, 1\] but \.spiketimes for \[0\]"),
    "unsorted spikes": (_unsorted_spikes, r"04-1\.spiketimes: line 4: expected increasing spike times"),
    "spike outside": (_spike_after_end, r"01-1\.spiketimes: line \d+: spike time 2500 ms outside the trace 0-2000 ms"),
    "current in nA": (_current_in_nA, r'implausible for pA.*current_unit="nA"'),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_folder_is_refused_and_nothing_is_written(source, tmp_path, case):
    mutate, message = MALFORMED[case]
    mutate(source)
    dest = tmp_path / "out" / "c07"
    with pytest.raises(DataImportError, match=message):
        import_qsnmc2007(source, dest)
    _assert_nothing_written(dest)


def test_current_unit_nA_is_converted(source, tmp_path):
    reference = load_challenge(import_qsnmc2007(source, tmp_path / "pA"))
    _current_in_nA(source)
    converted = load_challenge(import_qsnmc2007(source, tmp_path / "nA", current_unit="nA"))
    for a, b in zip(reference.stimuli, converted.stimuli):
        np.testing.assert_allclose(a.current_pA, b.current_pA, rtol=1e-5, atol=1e-3)
    with pytest.raises(DataImportError, match="unknown current unit 'mA'"):
        import_qsnmc2007(source, tmp_path / "mA", current_unit="mA")


def test_failed_import_leaves_an_existing_challenge_intact(source, tmp_path):
    dest = import_qsnmc2007(source, tmp_path / "c07")
    before = (dest / "manifest.json").read_text()
    _non_numeric(source)
    with pytest.raises(DataImportError):
        import_qsnmc2007(source, dest)
    assert (dest / "manifest.json").read_text() == before
    load_challenge(dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c07", "src"]


def _cli(argv: list[str]) -> int:
    """The real ``qsnmc`` command line, in this process."""
    return cli_main(argv)


def test_cli_import_writes_to_the_data_dir_and_refuses_to_overwrite(source, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QSNMC_DATA_DIR", str(tmp_path / "data"))
    assert _cli(["data", "import-qsnmc2007", str(source), "--name", "mini07"]) == 0
    out = capsys.readouterr().out
    assert "Delta = 2 ms" in out and "mini07" in out and "skipped: stimulus 10" in out
    assert (tmp_path / "data" / "challenges" / "mini07" / "manifest.json").is_file()
    assert _cli(["data", "import-qsnmc2007", str(source), "--name", "mini07"]) == 1
    assert "--force" in capsys.readouterr().err
    assert _cli(["data", "import-qsnmc2007", str(source), "--name", "mini07", "--force"]) == 0
    _non_numeric(source)
    assert _cli(["data", "import-qsnmc2007", str(source), "--name", "bad07"]) == 1
    assert "line 1203" in capsys.readouterr().err
    assert not (tmp_path / "data" / "challenges" / "bad07").exists()
    assert _cli(["data"]) == 2


# -- the real recordings -------------------------------------------------------------------
SHARED_2007 = Path(__file__).resolve().parents[1].parent / "shared" / "qsnmc2007" / "challengeA"
#: spikes per training file: the ".spiketimes rows" column of shared/qsnmc2007/SOURCES.md
PUBLISHED_TRAINING_COUNTS = {
    "00": [935, 875, 899, 911], "04": [606, 656, 631, 624], "05": [45, 40, 43, 44], "06": [539, 536, 544, 533],
    "08": [80, 75, 76, 99], "09": [528, 516, 523, 521], "11": [212, 216, 218, 219], "12": [92, 82, 115, 73],
}
#: rows of the test .spiketimes files (SOURCES.md says "see .spiketimes"; counted with wc -l)
TEST_FILE_COUNTS = {
    "01": [1151, 1151, 1154, 1153],
    "02": [268, 266, 267, 268],
    "03": [1646, 1646, 1646, 1646],
    "07": [492, 492, 494, 493],
}


def _real_files_present() -> bool:
    needed = [
        SHARED_2007 / sub / f"{s}-{r}.{kind}.gz"
        for sub, stims in (("training", PUBLISHED_TRAINING_COUNTS), ("test", TEST_FILE_COUNTS))
        for s in stims
        for r in range(4)
        for kind in ("voltage", "spiketimes")
    ]
    return all(p.is_file() for p in needed)


@pytest.fixture(scope="module")
def real_challenge(tmp_path_factory):
    if not _real_files_present():
        pytest.skip(f"the QSNMC 2007 Challenge A recordings are not at {SHARED_2007}")
    return load_challenge(import_qsnmc2007(SHARED_2007, tmp_path_factory.mktemp("real") / "qsnmc2007a"))


def test_real_2007_import_matches_the_published_counts(real_challenge):
    counts = {s.name: [len(t) for t in (s.train_spikes_s or s.test_spikes_s)] for s in real_challenge.stimuli}
    assert counts == PUBLISHED_TRAINING_COUNTS | TEST_FILE_COUNTS
    assert real_challenge.delta_s == 0.002
    assert "10" in real_challenge.manifest["provenance"]["skipped_test_stimuli"]
    for stim in real_challenge.test_stimuli():
        assert stim.window_s == (0.0, 34.0) and stim.n_repetitions == 4
        assert 0 < real_challenge.reliability(stim.name) <= 1


@pytest.mark.slow
def test_fitted_lif_beats_poisson_on_the_real_test_stimuli(real_challenge):
    baselines = pytest.importorskip("qsnmc_plugins.baselines")
    from qsnmc.scoring.evaluation import score_predictions

    train = real_challenge.training_data()
    scores = {}
    for cls in (baselines.LeakyIntegrateAndFire, baselines.RateMatchedPoisson):
        model = cls(seed=0, budget=0.05)
        model.fit(train)
        predictions = {s.name: model.predict(s) for s in real_challenge.test_stimuli()}
        scores[cls.name] = score_predictions(real_challenge, predictions).performance
    assert abs(scores["poisson"]) < 0.1
    assert scores["lif"] > 0.2  # measured 0.31 (budget 0.05)
    assert scores["lif"] > scores["poisson"] + 0.2
