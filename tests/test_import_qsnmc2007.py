"""The QSNMC 2007 Challenge A importer: small folders written here in the competition's layout
(well-formed and malformed), the ``qsnmc data import-qsnmc2007`` command, and, where
``../shared/qsnmc2007/challengeA/`` holds the real recordings, the real import.

The importer reads ``training/`` only (``test/`` holds model-made spike times) and holds out
the end of each recording: train on ``0 .. train_until``, test on ``train_until .. end`` of the
stimuli whose R there is at least the floor."""
from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import qsnmc
import qsnmc.challenges.textdata
from qsnmc import load_challenge
from qsnmc.challenges.store import ChallengeError, sha256_file
from qsnmc.cli import main as cli_main
from qsnmc.challenges.qsnmc2007 import IMPORTER_VERSION, import_qsnmc2007
from qsnmc.challenges.textdata import DataImportError

N_ROWS = 2000  # 2 s at 1 kHz
TRAIN_UNTIL = 1.5  # s: the synthetic folders' split (train 0-1.5 s, test 1.5-2 s)
N_REPS = 3
RELIABLE = ["00", "04"]  # repetitions spike together (1 ms apart): R near 1
UNRELIABLE = "06"  # repetitions spike independently: R near 0, training-only


def _write(path: Path, text: str) -> None:
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)


def _trace_text(current: np.ndarray, voltage: np.ndarray) -> str:
    rows = np.column_stack([np.arange(current.size), current, voltage])
    return "".join(f"{a:24.16e}{b:24.16e}{c:24.16e}\n" for a, b, c in rows)


def _random_spikes_ms(rng: np.random.Generator) -> np.ndarray:
    spikes = np.sort(rng.choice(np.arange(20, N_ROWS - 5), 40, replace=False))
    return spikes[np.diff(spikes, prepend=-10) > 4]


def _write_stimulus(folder: Path, stim: str, rng: np.random.Generator, *, reliable: bool) -> None:
    current = np.round(rng.normal(200, 150, N_ROWS) / 5) * 5 + 0.625
    spikes_ms = _random_spikes_ms(rng)
    for r in range(N_REPS):
        rep_current = current + rng.choice([-5.0, 0.0, 0.0, 5.0], N_ROWS)
        voltage = np.round((-65 + rng.normal(0, 1, N_ROWS)) * 256) / 256
        rep_spikes = spikes_ms + (r % 2) if reliable else _random_spikes_ms(rng)
        voltage[rep_spikes + 1] = 30.0
        suffix = ".gz" if r % 2 == 0 else ""  # plain and gzip files mixed, as a user may have them
        _write(folder / f"{stim}-{r}.voltage{suffix}", _trace_text(rep_current, voltage))
        cols = "".join(f"  {t:.16e}  3.0000000000000000e+000\n" for t in rep_spikes)  # as the originals
        _write(folder / f"{stim}-{r}.spiketimes{suffix}", cols)


def _write_unreadable_test_folder(test: Path, stims: list[str]) -> None:
    """A ``test/`` whose files would make any import that reads them fail."""
    test.mkdir(parents=True)
    for stim in stims:
        for r in range(4):
            (test / f"{stim}-{r}.voltage.gz").write_bytes(b"\x1f\x8b not gzip")
            (test / f"{stim}-{r}.spiketimes.gz").write_bytes(b"\x1f\x8b not gzip")
            (test / f"{stim}-{r}.spiketimes").write_text("garbage, not spike times\n")  # plain and .gz: a clash too


@pytest.fixture(scope="module")
def source_template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("qsnmc2007") / "challengeA"
    rng = np.random.default_rng(7)
    (root / "training").mkdir(parents=True)
    for stim in RELIABLE:
        _write_stimulus(root / "training", stim, rng, reliable=True)
    _write_stimulus(root / "training", UNRELIABLE, rng, reliable=False)
    _write_unreadable_test_folder(root / "test", ["01", "02"])
    return root


@pytest.fixture
def source(source_template, tmp_path) -> Path:
    dst = tmp_path / "src" / "challengeA"
    shutil.copytree(source_template, dst)
    return dst


def _import(src: Path, dest: Path, **options) -> Path:
    return import_qsnmc2007(src, dest, **({"train_until_s": TRAIN_UNTIL} | options))


def _file_spikes_s(path: Path) -> np.ndarray:
    return np.loadtxt(gzip.open(path) if path.suffix == ".gz" else path, ndmin=2)[:, 0] / 1000


def _lines(path: Path) -> list[str]:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.suffix == ".gz" else data).decode().splitlines(keepends=True)


def _edit_line(path: Path, line: int, text: str) -> None:
    lines = _lines(path)
    lines[line - 1] = text
    _write(path, "".join(lines))


def test_import_holds_out_the_end_of_each_recording(source, tmp_path):
    dest = _import(source, tmp_path / "out" / "c07")
    challenge = load_challenge(dest)
    assert challenge.delta_s == 0.002
    train = challenge.training_data()
    assert [s.name for s in train.stimuli] == sorted(RELIABLE + [UNRELIABLE])
    assert train.delta_s == 0.002 and train.dt_s == 0.001
    first = train.stimulus("00")
    assert first.window_s == (0.0, TRAIN_UNTIL) and first.voltage_mV.shape == (N_REPS, 1500)
    spikes = _file_spikes_s(source / "training" / "00-0.spiketimes.gz")
    np.testing.assert_allclose(first.spike_times_s[0], spikes[spikes < TRAIN_UNTIL])
    # the 1/256 mV grid of the recordings is stored without loss (int16 counts), up to the split only
    raw = np.loadtxt(gzip.open(source / "training" / "00-0.voltage.gz"))
    np.testing.assert_allclose(first.voltage_mV[0], raw[:1500, 2], atol=1e-6)
    # the current, public over the whole recording, is the mean of the repetitions'
    rep1 = np.loadtxt(source / "training" / "00-1.voltage")
    rep2 = np.loadtxt(gzip.open(source / "training" / "00-2.voltage.gz"))
    np.testing.assert_allclose(first.current_pA, (raw[:, 1] + rep1[:, 1] + rep2[:, 1]) / 3, atol=1e-3)

    tests = challenge.test_stimuli()
    assert [s.name for s in tests] == RELIABLE
    for stim in tests:
        assert stim.window_s == (TRAIN_UNTIL, 2.0) and stim.n_repetitions == N_REPS
        recorded = [_file_spikes_s(p) for p in sorted((source / "training").glob(f"{stim.name}-*.spiketimes*"))]
        held_out = [t[t >= TRAIN_UNTIL] for t in recorded]
        for got, want in zip(challenge.test_recordings(stim.name), held_out):
            np.testing.assert_allclose(got, want)
        r = qsnmc.intrinsic_reliability(held_out, 0.002, duration=2.0 - TRAIN_UNTIL)
        assert r > 0.5 and challenge.reliability(stim.name) == pytest.approx(r)
    manifest = json.loads((dest / "manifest.json").read_text())
    prov = manifest["provenance"]
    assert prov["importer_version"] == IMPORTER_VERSION
    assert prov["split"]["test_window_s"] == [TRAIN_UNTIL, 2.0] and prov["split"]["r_floor"] == 0.3
    excluded = prov["stimuli"][UNRELIABLE]["test_excluded"]
    assert excluded.startswith("R = ") and excluded.endswith("< 0.3 in 1.5-2 s")
    assert prov["test_window_reliability"][UNRELIABLE] < 0.3
    assert not any("test_excluded" in prov["stimuli"][s] for s in RELIABLE)
    assert "test/ not read" in prov["not_read"]
    # one digest for the folder source: the sha256 of its files' sha256sum listing, in sorted path order
    read = sorted(p for p in (source / "training").iterdir() if p.is_file())
    listing = "".join(f"{sha256_file(p)}  training/{p.name}\n" for p in read)
    assert challenge.source() == {"file": str(source.resolve()), "sha256": hashlib.sha256(listing.encode()).hexdigest()}
    assert prov["stimuli"]["00"]["current"]["max_abs_deviation_pA"] > 0
    assert prov["stimuli"]["00"]["spike_times_vs_detector"]["matched_within_delta"] == sum(
        prov["stimuli"]["00"]["spike_counts"]
    )
    # the test spike times are hidden: only training-window spikes and voltage in public.npz
    public = np.load(dest / "public.npz")
    assert not [k for k in public.files if ".test" in k]
    assert sorted(np.load(dest / "hidden.npz").files) == sorted(
        f"{s}.test_{k}" for s in RELIABLE for k in ("spikes_s", "spike_counts")
    )


def test_no_file_of_test_is_read(source, tmp_path, monkeypatch):
    read = []
    real_read_text, real_sha = qsnmc.challenges.textdata.read_text, qsnmc.challenges.qsnmc2007.sha256_file
    monkeypatch.setattr(qsnmc.challenges.textdata, "read_text", lambda p: read.append(Path(p)) or real_read_text(p))
    monkeypatch.setattr(qsnmc.challenges.qsnmc2007, "sha256_file", lambda p: read.append(Path(p)) or real_sha(p))
    with_test = load_challenge(_import(source, tmp_path / "a"))
    assert read and all(p.parent.name == "training" for p in read)
    shutil.rmtree(source / "test")
    without_test = load_challenge(_import(source, tmp_path / "b"))
    assert without_test.manifest["provenance"]["not_read"] is None
    for a, b in zip(with_test.stimuli, without_test.stimuli):
        np.testing.assert_array_equal(a.train_voltage_mV, b.train_voltage_mV)
        for x, y in zip(a.test_spikes_s or [], b.test_spikes_s or []):
            np.testing.assert_array_equal(x, y)


def test_r_floor_chooses_the_test_stimuli(source, tmp_path):
    everything = load_challenge(_import(source, tmp_path / "all", r_floor=-1.0))
    assert [s.name for s in everything.test_stimuli()] == sorted(RELIABLE + [UNRELIABLE])
    assert "test_excluded" not in everything.manifest["provenance"]["stimuli"][UNRELIABLE]


def _assert_nothing_written(dest: Path) -> None:
    assert not dest.exists()
    assert not dest.parent.exists() or not list(dest.parent.iterdir())


def _non_numeric(src: Path) -> None:
    _edit_line(src / "training" / "04-1.voltage", 1203, "  1.2020000000000000e+003  abc  -6.5e+001\n")


def _short_line(src: Path) -> None:
    _edit_line(src / "training" / "00-0.voltage.gz", 5, "  4.0  -4.375\n")


def _nan_value(src: Path) -> None:
    _edit_line(src / "training" / "06-1.voltage", 17, "  16.0  nan  0.0\n")


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


def _stimulus_without_spike_files(src: Path) -> None:
    for path in (src / "training").glob("06-*.spiketimes*"):
        path.unlink()


def _missing_last_repetition(src: Path) -> None:
    for path in (src / "training").glob("04-2.*"):
        path.unlink()


def _missing_middle_repetition(src: Path) -> None:
    for path in (src / "training").glob("00-1.*"):
        path.unlink()


def _unsorted_spikes(src: Path) -> None:
    path = src / "training" / "04-1.spiketimes"
    lines = _lines(path)
    lines[2], lines[3] = lines[3], lines[2]
    _write(path, "".join(lines))


def _spike_after_end(src: Path) -> None:
    path = src / "training" / "06-1.spiketimes"
    _write(path, "".join(_lines(path)) + "  2.5000000000000000e+003  3.0000000000000000e+000\n")


def _current_in_nA(src: Path) -> None:
    for path in sorted((src / "training").glob("*.voltage*")):
        table = np.loadtxt(gzip.open(path) if path.suffix == ".gz" else path)
        _write(path, _trace_text(table[:, 1] / 1000, table[:, 2]))


MALFORMED = {
    "non-numeric": (_non_numeric, r"04-1\.voltage: line 1203: expected 3 numeric columns, got 'abc'"),
    "short line": (_short_line, r"00-0\.voltage\.gz: line 5: expected 3 numeric columns, got 2"),
    "nan": (_nan_value, r"06-1\.voltage: line 17: expected 3 numeric columns, got a missing value 'nan'"),
    "truncated gzip": (_truncated_gzip, r"04-0\.voltage\.gz: truncated or corrupt gzip"),
    "truncated rows": (_truncated_rows, r"04-1\.voltage: expected 2000 rows, got 1500 \(file truncated\?\)"),
    "index gap": (_index_gap, r"04-1\.voltage: line 101: expected sample index 100"),
    "missing spike file": (_missing_spike_file, r"training/04-1\.spiketimes: missing \(plain or \.gz\)"),
    "stimulus without spike files": (_stimulus_without_spike_files, r"training/06-0\.spiketimes: missing"),
    "missing last repetition": (_missing_last_repetition, r"training/04-2\.voltage: missing.*repetitions 0\.\.2"),
    "missing middle repetition": (_missing_middle_repetition, r"training/00-1\.voltage: missing"),
    "unsorted spikes": (_unsorted_spikes, r"04-1\.spiketimes: line 4: expected increasing spike times"),
    "spike outside": (_spike_after_end, r"06-1\.spiketimes: line \d+: spike time 2500 ms outside the trace 0-2000 ms"),
    "current in nA": (_current_in_nA, r'implausible for pA.*current_unit="nA"'),
}

BAD_OPTIONS = {
    "test window beyond the recording": ({"train_until_s": 40.0}, r"^--train-until 40 s: the test window 40-2 s"),
    "test window of the whole recording": ({"train_until_s": 2.0}, r"^--train-until 2 s: .*0 < --train-until < 2"),
    "no training window": ({"train_until_s": 0.0}, r"^--train-until 0 s"),
    "off the sample grid": ({"train_until_s": 1.2345}, r"^--train-until 1.2345 s: not on the 1 ms sample grid"),
    "no stimulus above the floor": ({"r_floor": 1.01}, r"^--r-floor 1.01: no stimulus has R >= 1.01 .*highest: "),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_folder_is_refused_and_nothing_is_written(source, tmp_path, case):
    mutate, message = MALFORMED[case]
    mutate(source)
    dest = tmp_path / "out" / "c07"
    with pytest.raises(DataImportError, match=message):
        _import(source, dest)
    _assert_nothing_written(dest)


@pytest.mark.parametrize("case", sorted(BAD_OPTIONS))
def test_bad_options_are_refused_and_nothing_is_written(source_template, tmp_path, case):
    options, message = BAD_OPTIONS[case]
    dest = tmp_path / "out" / "c07"
    with pytest.raises(DataImportError, match=message):
        _import(source_template, dest, **options)
    _assert_nothing_written(dest)


def test_current_unit_nA_is_converted(source, tmp_path):
    reference = load_challenge(_import(source, tmp_path / "pA"))
    _current_in_nA(source)
    converted = load_challenge(_import(source, tmp_path / "nA", current_unit="nA"))
    for a, b in zip(reference.stimuli, converted.stimuli):
        np.testing.assert_allclose(a.current_pA, b.current_pA, rtol=1e-5, atol=1e-3)
    with pytest.raises(DataImportError, match="unknown current unit 'mA'"):
        _import(source, tmp_path / "mA", current_unit="mA")


def test_failed_import_leaves_an_existing_challenge_intact(source, tmp_path):
    dest = _import(source, tmp_path / "c07")
    before = (dest / "manifest.json").read_text()
    _non_numeric(source)
    with pytest.raises(DataImportError):
        _import(source, dest)
    assert (dest / "manifest.json").read_text() == before
    load_challenge(dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c07", "src"]


def _make_old(dest: Path, version: int | None) -> None:
    """Rewrite a challenge's manifest as another importer version wrote it (None: the first, unnumbered)."""
    mpath = dest / "manifest.json"
    manifest = json.loads(mpath.read_text())
    if version is None:
        del manifest["provenance"]["importer_version"]
    else:
        manifest["provenance"]["importer_version"] = version
    mpath.write_text(json.dumps(manifest))


def test_a_challenge_from_an_older_importer_is_refused(source, tmp_path):
    dest = _import(source, tmp_path / "c07", name="mini07")
    _make_old(dest, None)
    command = re.escape(f"qsnmc data import-qsnmc2007 {source} --name mini07 --force")
    with pytest.raises(ChallengeError, match=rf"older qsnmc .*: {command}$"):
        load_challenge(dest)
    _make_old(dest, IMPORTER_VERSION + 1)
    with pytest.raises(ChallengeError, match="newer qsnmc"):
        load_challenge(dest)
    _make_old(dest, IMPORTER_VERSION)
    load_challenge(dest)


def _cli(argv: list[str]) -> int:
    """The real ``qsnmc`` command line, in this process."""
    return cli_main(argv)


def test_cli_import_writes_to_the_data_dir_and_refuses_to_overwrite(source, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QSNMC_DATA_DIR", str(tmp_path / "data"))
    base = ["data", "import-qsnmc2007", str(source), "--name", "mini07", "--train-until", "1.5"]
    assert _cli(base) == 0
    out = capsys.readouterr().out
    assert "Delta = 2 ms" in out and "mini07" in out
    assert f"training only: stimulus {UNRELIABLE}: R = " in out
    assert "\ntest/ not read: its spike times were made by the organisers' aEIF model" in out
    dest = tmp_path / "data" / "challenges" / "mini07"
    assert (dest / "manifest.json").is_file()
    assert _cli(["list", "--challenges"]) == 0  # a folder source is listed with its digest
    digest = load_challenge(dest).source()["sha256"]
    assert f"{source.resolve()} (sha256 {digest[:16]})" in capsys.readouterr().out
    assert _cli(base) == 2
    assert "--force" in capsys.readouterr().err
    _make_old(dest, None)  # as the previous version of the command left it
    assert _cli(["run", "poisson", "--challenge", "mini07", "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "older qsnmc" in capsys.readouterr().err and not (tmp_path / "runs").exists()
    assert _cli(base + ["--force"]) == 0
    load_challenge(dest)
    _non_numeric(source)
    assert _cli(["data", "import-qsnmc2007", str(source), "--name", "bad07"]) == 2
    assert "line 1203" in capsys.readouterr().err
    assert not (tmp_path / "data" / "challenges" / "bad07").exists()
    assert _cli(["data"]) == 2


@pytest.mark.parametrize("option", [["--train-until", "40"], ["--r-floor", "1.01"]])
def test_cli_bad_option_is_one_line_without_traceback(source_template, tmp_path, monkeypatch, capsys, option):
    monkeypatch.setenv("QSNMC_DATA_DIR", str(tmp_path / "data"))
    argv = ["data", "import-qsnmc2007", str(source_template), "--name", "bad07", "--train-until", "1.5", *option]
    assert _cli(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {option[0]} ") and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "data" / "challenges" / "bad07").exists()


# -- the real recordings -------------------------------------------------------------------
SHARED_2007 = Path(__file__).resolve().parents[1].parent / "shared" / "qsnmc2007" / "challengeA"
#: spikes per training file: the ".spiketimes rows" column of shared/qsnmc2007/SOURCES.md
PUBLISHED_TRAINING_COUNTS = {
    "00": [935, 875, 899, 911], "04": [606, 656, 631, 624], "05": [45, 40, 43, 44], "06": [539, 536, 544, 533],
    "08": [80, 75, 76, 99], "09": [528, 516, 523, 521], "11": [212, 216, 218, 219], "12": [92, 82, 115, 73],
}
#: the stimuli whose R in 22-34 s (Delta 2 ms) is at least 0.3
REAL_TEST_STIMULI = ["00", "04", "05", "11"]


def _real_files_present() -> bool:
    needed = [
        SHARED_2007 / "training" / f"{s}-{r}.{kind}.gz"
        for s in PUBLISHED_TRAINING_COUNTS
        for r in range(4)
        for kind in ("voltage", "spiketimes")
    ]
    return all(p.is_file() for p in needed)


@pytest.fixture(scope="module")
def real_challenge(tmp_path_factory):
    """The real recordings imported from a copy whose training/ is the shared one and whose test/
    holds files that fail any reader (so the import, checked against the files by the tests
    below, cannot have read test/)."""
    if not _real_files_present():
        pytest.skip(f"the QSNMC 2007 Challenge A recordings are not at {SHARED_2007}")
    root = tmp_path_factory.mktemp("real")
    copy = root / "challengeA"
    copy.mkdir()
    (copy / "training").symlink_to(SHARED_2007 / "training", target_is_directory=True)
    _write_unreadable_test_folder(copy / "test", ["01", "02", "03", "07"])
    return load_challenge(import_qsnmc2007(copy, root / "qsnmc2007a"))


def test_real_2007_import_tests_recorded_data_only(real_challenge):
    assert real_challenge.delta_s == 0.002
    stimuli = {s.name: s for s in real_challenge.stimuli}
    assert sorted(stimuli) == sorted(PUBLISHED_TRAINING_COUNTS)  # no test/ stimulus
    assert [s.name for s in real_challenge.test_stimuli()] == REAL_TEST_STIMULI
    provenance = real_challenge.manifest["provenance"]
    for name, s in stimuli.items():
        assert s.train_window_s == (0.0, 22.0) and s.train_voltage_mV.shape == (4, 22000)
        assert s.current_pA.shape == (34000,)
        assert provenance["stimuli"][name]["spike_counts"] == PUBLISHED_TRAINING_COUNTS[name]
        if name in REAL_TEST_STIMULI:
            assert s.test_window_s == (22.0, 34.0)  # disjoint from the training window
            counts = [len(a) + len(b) for a, b in zip(s.train_spikes_s, s.test_spikes_s)]
            assert counts == PUBLISHED_TRAINING_COUNTS[name]
            assert "test_excluded" not in provenance["stimuli"][name]
        else:
            assert s.test_window_s is None and "< 0.3 in 22-34 s" in provenance["stimuli"][name]["test_excluded"]


def test_real_2007_reliability_matches_the_files(real_challenge):
    for name in PUBLISHED_TRAINING_COUNTS:
        trains = [_file_spikes_s(SHARED_2007 / "training" / f"{name}-{r}.spiketimes.gz") for r in range(4)]
        r = qsnmc.intrinsic_reliability([t[t >= 22] for t in trains], 0.002, duration=12.0)
        assert real_challenge.manifest["provenance"]["test_window_reliability"][name] == pytest.approx(r, abs=1e-4)
        if name in REAL_TEST_STIMULI:
            assert real_challenge.reliability(name) == pytest.approx(r, abs=1e-12) and r >= 0.3
        else:
            assert r < 0.3


def test_real_2007_import_never_reads_test(real_challenge):
    # the fixture's test/ is unreadable garbage: the import went through, and the tests above find
    # the published spike counts and R of the training files in it
    assert "test/ not read" in real_challenge.manifest["provenance"]["not_read"]
    assert (Path(real_challenge.manifest["provenance"]["source_dir"]) / "test" / "01-0.spiketimes").read_text() \
        == "garbage, not spike times\n"


def test_fitted_lif_beats_poisson_on_the_held_out_recordings(real_challenge):
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
    assert scores["lif"] > 0.2  # measured 0.42 (budget 0.05, seed 0)
    assert scores["lif"] > scores["poisson"] + 0.2
