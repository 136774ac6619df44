"""Mapping trials without ground truth: plausibility, selection, stability, fallback order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from benchmark.sfm import mapping as poses_mod
from benchmark.sfm.poses import PoseRecoveryConfig, recover_poses
from benchmark.sfm.trials import Trial, implausible_frames, select_trial
from benchmark.sources.synthetic import canonical_K

F = 14


def _orbit(num: int = F, scale: float = 1.0, bend: float = 0.0) -> list[np.ndarray]:
    """World-to-camera poses of a 15-degree orbit (extent ~0.26) in a model frame of
    arbitrary scale; ``bend`` distorts the path (another, wrong, model)."""
    out = []
    for f in range(num):
        a = np.radians(-7.5 + 15.0 * f / (num - 1))
        c = scale * np.array([np.sin(a), bend * 0.26 * (a / np.radians(7.5)) ** 2, 1 - np.cos(a)])
        R = Rotation.from_euler("y", -a).as_matrix()
        w2c = np.eye(4)
        w2c[:3, :3], w2c[:3, 3] = R, -R @ c
        out.append(w2c)
    return out


def _trial(seed: int, w2c: list[np.ndarray], reproj: float = 0.4, obs: int = 400) -> Trial:
    return Trial(seed, list(w2c), [reproj] * len(w2c), [obs] * len(w2c), reproj, 3000, 4.0)


def _displace(w2c: list[np.ndarray], frame: int, offset: np.ndarray) -> list[np.ndarray]:
    out = [p.copy() for p in w2c]
    R = out[frame][:3, :3]
    c = -R.T @ out[frame][:3, 3] + offset
    out[frame][:3, 3] = -R @ c
    return out


def _bad_trial(seed: int) -> Trial:
    # the case: frames 5 and 12 registered 17% and 39% of the extent away
    w2c = _orbit(scale=2.0)
    extent = 2.0 * 2 * np.sin(np.radians(7.5))
    w2c = _displace(w2c, 5, np.array([0.0, 0.17 * extent, 0.0]))
    w2c = _displace(w2c, 12, np.array([0.39 * extent, 0.0, 0.0]))
    return _trial(seed, w2c, reproj=0.35)  # lowest reprojection error of all: a trap


def test_seed_unstable_clip_picks_the_consistent_trial():
    good = [_trial(1, _orbit(scale=3.0)), _trial(2, _orbit(scale=0.5))]
    selection = select_trial([_bad_trial(0), *good])
    assert selection.trial is not None and selection.trial.seed in (1, 2)
    assert not selection.unstable and not selection.dropped


def test_a_lone_trial_with_far_off_frames_drops_them_and_names_the_rule():
    selection = select_trial([_bad_trial(0)])
    assert set(selection.dropped) == {5, 12}
    assert all("neighbours" in why for why in selection.dropped.values())


def test_trials_that_disagree_everywhere_are_flagged_unstable():
    selection = select_trial([_trial(0, _orbit()), _trial(1, _orbit(bend=0.6))])
    assert selection.unstable
    assert selection.disagreement is not None and selection.disagreement > 0.02


def test_high_reprojection_error_and_few_observations_are_implausible():
    trial = _trial(0, _orbit())
    trial.reproj_px[3] = 6.0
    trial.observations[9] = 12
    dropped = implausible_frames(trial)
    assert set(dropped) == {3, 9}
    assert "reprojection error" in dropped[3] and "observations" in dropped[9]


def test_smooth_path_has_no_implausible_frame():
    assert implausible_frames(_trial(0, _orbit())) == {}


@pytest.fixture()
def fake_colmap(monkeypatch, tmp_path):
    """recover_poses with COLMAP's extraction/matching skipped and mapping replaced by a
    script: (rules, seed) -> poses or None (no model). Returns the call log."""
    calls: list[tuple[str, int]] = []
    script: dict[str, list[np.ndarray] | None] = {}

    def fake_trials(pycolmap, database, image_dir, models, names, conf, relaxed, timings=None):
        out = []
        for k, (relaxed_k, seed) in enumerate(poses_mod.trial_plan(conf, relaxed)):
            rules = "relaxed" if relaxed_k else "default"
            calls.append((rules, seed))
            w2c = script.get(rules)
            folder = models / f"{rules}{k}"
            folder.mkdir(parents=True, exist_ok=True)
            if w2c is None:
                out.append((Trial(seed, [None] * len(names), [None] * len(names),
                                  [0] * len(names), init_rules=rules), 0, folder))
            else:
                t = _trial(seed, w2c, reproj=script.get(f"{rules}_reproj", 0.4))
                t.init_rules = rules
                out.append((t, 1, folder))
        return out

    monkeypatch.setattr(poses_mod, "extract_and_match", lambda *a, **k: None)
    monkeypatch.setattr(poses_mod, "run_trials", fake_trials)
    frames = tmp_path / "frames"
    frames.mkdir()
    paths = []
    for f in range(F):
        (frames / f"{f:05d}.png").write_bytes(b"")
        paths.append(frames / f"{f:05d}.png")
    return calls, script, paths


def _recover(paths: list[Path], tmp: Path, **conf) -> poses_mod.RecoveredPoses:
    """The incremental mapper with the previous rule order (COLMAP's rules, relaxed ones as
    fallback) unless ``conf`` names others: initial-pair rules are the incremental mapper's."""
    options = {"rotation_fallback": False, "num_trials": 2, "mapper": "incremental",
               "init_rules": "default-then-relaxed", **conf}
    return recover_poses(paths, canonical_K(448, 256), tmp / "sfm",
                         PoseRecoveryConfig(**options))


def test_default_rules_first_and_relaxed_only_when_they_find_no_model(fake_colmap, tmp_path):
    calls, script, paths = fake_colmap
    script["default"] = None
    script["relaxed"] = _orbit()
    result = _recover(paths, tmp_path)
    assert [r for r, _ in calls] == ["default", "default", "relaxed", "relaxed"]
    assert result.status == "ok" and result.init_rules == "relaxed"
    assert [t["init_rules"] for t in result.trials] == ["default", "default", "relaxed",
                                                        "relaxed"]


def test_relaxed_rules_are_not_tried_when_the_defaults_succeed(fake_colmap, tmp_path):
    calls, script, paths = fake_colmap
    script["default"] = _orbit()
    script["relaxed"] = _orbit()
    result = _recover(paths, tmp_path)
    assert {r for r, _ in calls} == {"default"}
    assert result.status == "ok" and result.init_rules == "default"


def test_legacy_rule_set_runs_relaxed_only(fake_colmap, tmp_path):
    calls, script, paths = fake_colmap
    script["relaxed"] = _orbit()
    _recover(paths, tmp_path, init_rules="relaxed")
    assert {r for r, _ in calls} == {"relaxed"}


def test_global_mapper_runs_its_trials_once_whatever_the_initial_pair_rules(
    fake_colmap, tmp_path
):
    """The global mapper has no initial pair: a relaxed fallback pass would map the same
    trials again."""
    calls, script, paths = fake_colmap
    result = _recover(paths, tmp_path, mapper="global")
    assert [r for r, _ in calls] == ["default", "default"]
    assert result.status == "failed" and "no model" in result.reason


def test_no_model_with_either_rule_set_is_a_recorded_failure(fake_colmap, tmp_path):
    calls, script, paths = fake_colmap
    result = _recover(paths, tmp_path)
    assert result.status == "failed" and "no model" in result.reason
    assert len(result.trials) == len(calls) == 4


def test_no_model_but_homographies_skip_relaxed_rules_for_rotation_only(
    fake_colmap, tmp_path, monkeypatch
):
    calls, script, paths = fake_colmap
    rotations = [np.eye(4) for _ in range(F)]
    monkeypatch.setattr(poses_mod, "rotation_only",
                        lambda *a, **k: (rotations, "14/14 matched pairs rotation-dominant"))
    result = recover_poses(paths, canonical_K(448, 256), tmp_path / "sfm",
                           PoseRecoveryConfig(num_trials=2, init_rules="default-then-relaxed"))
    assert {r for r, _ in calls} == {"default"}
    assert result.kind == "rotation_only" and result.status == "ok"
    assert "no model" in result.reason and "translation undefined" in result.reason


# The protocol's default: one trial with COLMAP's rules and one with the relaxed rules.


def test_mixed_rules_map_once_with_each_rule_set(fake_colmap, tmp_path):
    calls, script, paths = fake_colmap
    script["default"] = _orbit()
    script["relaxed"] = _orbit(scale=2.0)
    result = _recover(paths, tmp_path, init_rules="mixed", num_trials=2)
    assert calls == [("default", 0), ("relaxed", 1)]
    assert result.status == "ok" and not result.unstable and not result.dropped
    assert [t["init_rules"] for t in result.trials] == ["default", "relaxed"]


def test_mixed_rules_fall_back_to_the_relaxed_trial_when_the_defaults_find_no_model(
    fake_colmap, tmp_path
):
    calls, script, paths = fake_colmap
    script["default"] = None
    script["relaxed"] = _orbit()
    result = _recover(paths, tmp_path, init_rules="mixed", num_trials=2)
    assert calls == [("default", 0), ("relaxed", 1)]
    assert result.status == "ok" and result.init_rules == "relaxed"


def test_mixed_trial_plan_alternates_rules_and_seeds():
    conf = PoseRecoveryConfig(init_rules="mixed", num_trials=4, seed=7)
    assert poses_mod.trial_plan(conf, relaxed=False) == [(False, 7), (True, 8), (False, 9),
                                                         (True, 10)]
    conf = PoseRecoveryConfig(init_rules="default", num_trials=3, seed=7)
    assert poses_mod.trial_plan(conf, relaxed=False) == [(False, 7), (False, 8), (False, 9)]


def test_mixed_rules_without_any_model_are_a_recorded_failure(fake_colmap, tmp_path):
    calls, script, paths = fake_colmap
    result = _recover(paths, tmp_path, init_rules="mixed", num_trials=2)
    assert calls == [("default", 0), ("relaxed", 1)]
    assert result.status == "failed" and "no model" in result.reason


def test_a_wrong_model_all_same_rule_trials_agree_on_ends_flagged_or_consistent(
    fake_colmap, tmp_path
):
    # the calibration's hard01 orbit class: every trial with COLMAP's rules converges on the
    # same distorted model (higher reprojection error), the relaxed initialisation does not
    calls, script, paths = fake_colmap
    script["default"] = _orbit(bend=0.6)
    script["default_reproj"] = 0.46
    script["relaxed"] = _orbit()
    script["relaxed_reproj"] = 0.27
    same_rules = _recover(paths, tmp_path, init_rules="default", num_trials=3)
    assert same_rules.status == "ok" and not same_rules.unstable  # the blind spot
    result = _recover(paths, tmp_path, init_rules="mixed", num_trials=2)
    assert result.unstable or result.init_rules == "relaxed"
    if result.status == "ok":
        assert result.init_rules == "relaxed"
    else:
        assert "unstable" in result.reason


class _ScriptedColmap:
    """Stands in for pycolmap in :func:`benchmark.sfm.mapping.run_trials`: mapping with
    (rules, seed) returns the scripted model, or no model; records the calls."""

    def __init__(self, script: dict[tuple[str, int], tuple[list[np.ndarray], float] | None]):
        self.script, self.calls, self._seed = script, [], None

    def set_random_seed(self, seed: int) -> None:
        self._seed = seed

    def incremental_mapping(self, database, image_dir, folder, options):
        rules, seed = options
        assert seed == self._seed
        self.calls.append((rules, seed))
        model = self.script.get((rules, seed))
        return {} if model is None else {0: model}

    def global_mapping(self, database, image_dir, folder, options):
        # no initial pair: the global mapper's trials differ by seed only
        _, seed = options
        assert seed == self._seed
        self.calls.append(("global", seed))
        model = self.script.get(("global", seed))
        return {} if model is None else {0: model}


@pytest.fixture()
def scripted_mapping(monkeypatch):
    """run_trials on a scripted COLMAP: models are (w2c list, mean reprojection error)."""
    monkeypatch.setattr(poses_mod, "mapper_options",
                        lambda pycolmap, conf, seed, relaxed: ("relaxed" if relaxed
                                                               else "default", seed))
    monkeypatch.setattr(poses_mod, "largest_model", lambda recs: recs[0])

    def frames_of(model, names):
        w2c, reproj = model
        return list(w2c), [reproj] * len(names), [400] * len(names), 4.0

    monkeypatch.setattr(poses_mod, "frames_of", frames_of)

    class Model(tuple):
        def compute_mean_reprojection_error(self) -> float:
            return self[1]

        def num_points3D(self) -> int:
            return 3000

    def run(script, tmp_path, **conf):
        colmap = _ScriptedColmap({k: None if v is None else Model(v) for k, v in script.items()})
        names = [f"{f:05d}.png" for f in range(F)]
        out = poses_mod.run_trials(colmap, tmp_path / "db", tmp_path, tmp_path / "models", names,
                                   PoseRecoveryConfig(**{"mapper": "incremental",
                                                         "num_trials": 2, **conf}),
                                   relaxed=False)
        return colmap.calls, [trial for trial, _, _ in out]

    return run


def test_a_lone_model_gets_a_cross_check_trial_and_a_far_off_one_is_flagged(scripted_mapping,
                                                                          tmp_path):
    """The calibration's hard02 / pedestal case: COLMAP's rules find no model, the relaxed
    trial's model is far off yet plausible frame by frame. Another relaxed trial on the next
    seed is run; it disagrees, so the lone model is not scored as if it were checked."""
    wrong, right = (_orbit(bend=0.6), 0.84), (_orbit(scale=2.0), 0.33)
    calls, trials = scripted_mapping({("relaxed", 1): wrong, ("relaxed", 2): right}, tmp_path)
    assert calls == [("default", 0), ("relaxed", 1), ("relaxed", 2)]
    selection = select_trial(trials)
    assert selection.unstable  # flagged: never a silent far-off model
    # when the cross-check agrees, the clip keeps its model, unflagged
    calls, trials = scripted_mapping({("relaxed", 1): right, ("relaxed", 2): right}, tmp_path)
    assert len(calls) == 3
    selection = select_trial(trials)
    assert not selection.unstable and selection.trial is not None


def test_global_mapper_trials_differ_by_seed_and_a_lone_model_is_cross_checked(
    scripted_mapping, tmp_path
):
    """The 2026-12-04 global protocol (trials differ by the mapper's seed): two trials on seeds
    0 and 1; when only one finds a model, a third on seed 2 cross-checks it, and a
    disagreement flags the clip."""
    wrong, right = (_orbit(bend=0.6), 0.84), (_orbit(scale=2.0), 0.33)
    calls, trials = scripted_mapping({("global", 1): wrong, ("global", 2): right}, tmp_path,
                                     mapper="global", verification_trials=False)
    assert calls == [("global", 0), ("global", 1), ("global", 2)]
    assert {t.init_rules for t in trials} == {"global"}
    assert select_trial(trials).unstable
    calls, trials = scripted_mapping({("global", 0): right, ("global", 1): right}, tmp_path,
                                     mapper="global", verification_trials=False)
    assert calls == [("global", 0), ("global", 1)]
    assert not select_trial(trials).unstable


def test_no_cross_check_when_both_rule_sets_found_a_model_or_neither_did(scripted_mapping,
                                                                        tmp_path):
    model = (_orbit(), 0.3)
    calls, _ = scripted_mapping({("default", 0): model, ("relaxed", 1): model}, tmp_path)
    assert calls == [("default", 0), ("relaxed", 1)]
    calls, _ = scripted_mapping({}, tmp_path)
    assert calls == [("default", 0), ("relaxed", 1)]
    # without the plausibility rules (or outside mixed rules) the plan is run as it is
    calls, _ = scripted_mapping({("relaxed", 1): model}, tmp_path, plausibility=False)
    assert calls == [("default", 0), ("relaxed", 1)]


def test_among_agreeing_trials_the_lower_reprojection_error_wins():
    """The calibration's hard02 / orbit_left_10deg+dolly_in_15pct class: verification seeds
    give two models under 1% of the path apart; the majority's is the worse one, and the
    better has the lower mean reprojection error. All three agree within the stability limit,
    so the lowest error is chosen (a medoid rule would pick the majority) and the clip is
    stable."""
    worse = _orbit(bend=0.05)
    trials = [_trial(0, worse, reproj=0.52), _trial(1, worse, reproj=0.52),
              _trial(2, _orbit(scale=2.0), reproj=0.47)]
    selection = select_trial(trials)
    assert selection.disagreement is not None and 0.001 < selection.disagreement < 0.02
    assert selection.trial is not None and selection.trial.seed == 2
    assert not selection.unstable and not selection.dropped


@pytest.fixture()
def verification_mapping(monkeypatch, scripted_mapping):
    """run_trials of the global mapper on a scripted COLMAP whose re-verified databases are
    scripted too: ``matches[k]`` names trial k's verified matches (equal names: equal
    matches), ``models[name]`` the model mapped from them. Returns (mapped match names,
    mapper seeds, trials)."""

    def run(matches, models, tmp_path, **conf):
        mapped, seeds = [], []

        class Colmap(_ScriptedColmap):
            def global_mapping(self, database, image_dir, folder, options):
                name = Path(database).read_text()
                mapped.append(name)
                seeds.append(options[1])
                return {} if models[name] is None else {0: models[name]}

        def reverify(pycolmap, database, copy, conf, seed):
            copy.write_text(matches[seed - conf.seed])

        monkeypatch.setattr(poses_mod, "reverify", reverify)
        monkeypatch.setattr(poses_mod, "verified_geometry",
                            lambda pycolmap, path: Path(path).read_text())
        database = tmp_path / "database.db"
        database.write_text(matches[0])
        names = [f"{f:05d}.png" for f in range(F)]

        class Model(tuple):
            def compute_mean_reprojection_error(self) -> float:
                return self[1]

            def num_points3D(self) -> int:
                return 3000

        colmap = Colmap({})
        models = {k: None if v is None else Model(v) for k, v in models.items()}
        timings: dict[str, float] = {}
        out = poses_mod.run_trials(colmap, database, tmp_path, tmp_path / "models", names,
                                   PoseRecoveryConfig(seed=5, **conf), relaxed=False,
                                   timings=timings)
        assert "verification" in timings or len(out) == 1
        return mapped, seeds, [trial for trial, _, _ in out]

    return run


def test_global_trials_vary_the_verified_matches_and_keep_the_mapper_seed(
    verification_mapping, tmp_path
):
    worse, better = (_orbit(bend=0.05), 0.52), (_orbit(scale=2.0), 0.47)
    worse_too = (_orbit(bend=0.048), 0.52)  # the same mode, not the same model
    mapped, seeds, trials = verification_mapping(
        ["a", "b", "c"], {"a": worse, "b": worse_too, "c": better}, tmp_path)
    assert mapped == ["a", "b", "c"] and seeds == [5, 5, 5]
    assert [t.seed for t in trials] == [5, 6, 7]  # trial k: verification seed seed + k
    chosen = select_trial(trials).trial
    assert chosen is not None and chosen.seed == 7


def test_global_trials_stop_when_the_second_verification_changes_nothing(
    verification_mapping, tmp_path
):
    model = (_orbit(), 0.3)
    mapped, _, trials = verification_mapping(["a", "a", "c"], {"a": model, "c": None},
                                             tmp_path)
    assert mapped == ["a"]  # mapped once: the same matches give the same model
    assert [t.seed for t in trials] == [5, 6] and trials[1].same_as == 5
    assert trials[1].verdict()["same_matches_as_seed"] == 5
    assert "same_matches_as_seed" not in trials[0].verdict()
    assert not select_trial(trials).unstable
    # a later repeat is recorded, not mapped again, and the trials go on
    other = (_displace(_orbit(), 7, np.array([0, 3e-4, 0])), 0.3)
    mapped, _, trials = verification_mapping(["a", "b", "a"], {"a": model, "b": other},
                                             tmp_path)
    assert mapped == ["a", "b"] and trials[2].same_as == 5


def test_a_lone_global_model_is_cross_checked_by_another_verification(
    verification_mapping, tmp_path
):
    wrong, right = (_orbit(bend=0.6), 0.3), (_orbit(), 0.4)
    mapped, _, trials = verification_mapping(
        ["a", "b", "c", "d"], {"a": wrong, "b": None, "c": None, "d": right}, tmp_path)
    assert mapped == ["a", "b", "c", "d"]  # the first trial's lone model gets a fourth
    assert select_trial(trials).unstable
    mapped, _, _ = verification_mapping(["a", "b", "c"], {"a": None, "b": None, "c": None},
                                        tmp_path)
    assert mapped == ["a", "b"]  # two verifications without a model: not the seed's doing


def test_global_trials_stop_when_the_second_model_coincides_with_the_first(
    verification_mapping, tmp_path
):
    # rooms: a few inliers differ between verification seeds, the model does not (< 1e-4 of
    # the scale); a model 7.5e-4 away (a hard clip's) is a different one and a third runs
    same, near = (_orbit(), 0.3), (_displace(_orbit(), 7, np.array([0, 2e-5, 0])), 0.3)
    mapped, _, trials = verification_mapping(["a", "b", "c"], {"a": same, "b": near,
                                                                "c": same}, tmp_path)
    assert mapped == ["a", "b"] and len(trials) == 2
    apart = (_displace(_orbit(), 7, np.array([0, 3e-4, 0])), 0.3)  # 7.5e-4 of the scale
    mapped, _, _ = verification_mapping(["a", "b", "c"], {"a": same, "b": apart, "c": same},
                                        tmp_path)
    assert mapped == ["a", "b", "c"]


def test_unstable_trials_of_a_rotation_dominant_clip_score_by_rotation(
    fake_colmap, tmp_path, monkeypatch
):
    # a pan with a little parallax: SfM trials find models that disagree on the (tiny)
    # translation; the homographies explain the matches, so the rotations are measured
    calls, script, paths = fake_colmap
    script["default"] = _orbit()
    script["relaxed"] = _orbit(bend=0.6)
    conf = dict(num_trials=2, init_rules="mixed", rotation_fallback=True)
    unstable = recover_poses(paths, canonical_K(448, 256), tmp_path / "a",
                             PoseRecoveryConfig(**{**conf, "rotation_fallback": False}))
    assert unstable.status == "failed" and "unstable" in unstable.reason
    rotations = [np.eye(4) for _ in range(F)]
    monkeypatch.setattr(poses_mod, "rotation_only",
                        lambda *a, **k: (rotations, "13/13 matched pairs rotation-dominant"))
    result = recover_poses(paths, canonical_K(448, 256), tmp_path / "b",
                           PoseRecoveryConfig(**conf))
    assert result.status == "ok" and result.kind == "rotation_only"
    assert "SfM unstable" in result.reason and "translation undefined" in result.reason
    # not rotation-dominant: the unstable verdict stands
    monkeypatch.setattr(poses_mod, "rotation_only", lambda *a, **k: None)
    result = recover_poses(paths, canonical_K(448, 256), tmp_path / "c",
                           PoseRecoveryConfig(**conf))
    assert result.status == "failed" and "unstable" in result.reason
