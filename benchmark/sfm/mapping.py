"""Mapping trials on shared features and matches, the choice among them, and the verdict of
one clip (:func:`recover_poses`; protocol in docs/protocol.md)."""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.cameras import CameraFileError, validate_intrinsics
from benchmark.sfm.colmap import (
    capture_native_output,
    database_summary,
    extract_and_match,
    frames_of,
    largest_model,
    mapper_options,
    reverify,
    rotation_only,
    verified_geometry,
)
from benchmark.sfm.records import PoseRecoveryConfig, RecoveredPoses
from benchmark.sfm.trials import (
    MAX_DISAGREEMENT,
    Selection,
    Trial,
    coincide,
    select_trial,
)

log = logging.getLogger(__name__)

def trial_plan(conf: PoseRecoveryConfig, relaxed: bool) -> list[tuple[bool, int]]:
    """(relaxed rules?, seed) of each mapping trial, in order; trial k has seed ``seed + k``.
    ``mixed`` alternates COLMAP's rules and the relaxed ones: the trials then differ in both
    the initial-pair rules and the seed, so a wrong model that one initialisation converges to
    shows up as a disagreement (same-rule trials agree on it; two rule sets with one seed can
    pick the same initial pair and build the same model)."""
    n = max(1, conf.num_trials)
    if conf.init_rules == "mixed":
        return [(k % 2 == 1, conf.seed + k) for k in range(n)]
    return [(relaxed, conf.seed + k) for k in range(n)]


def run_trials(
    pycolmap: Any, database: Path, image_dir: Path, models: Path, names: list[str],
    conf: PoseRecoveryConfig, relaxed: bool, timings: dict[str, float] | None = None,
) -> list[tuple[Trial, int, Path]]:
    """Mappings of :func:`trial_plan` on the shared database; (trial, number of models, its
    folder) each. Stops early when a third trial cannot change the outcome: the first two
    agree, or no trial of each rule set found any model. With ``mixed`` rules, a model that
    is the only one of the plan (COLMAP's rules found none) gets one more relaxed trial on
    the next seed as its cross-check (:func:`needs_cross_check`). The global mapper with
    ``verification_trials`` varies the verified matches instead (:func:`verification_trials`)."""
    if conf.mapper == "global" and conf.verification_trials:
        return verification_trials(pycolmap, database, image_dir, models, names, conf,
                                   timings if timings is not None else {})
    out: list[tuple[Trial, int, Path]] = []
    plan = trial_plan(conf, relaxed)
    mixed = conf.init_rules == "mixed"
    for k, (relaxed_k, seed) in enumerate(plan):
        if k >= 1 and not mixed and out[0][1] == 0:
            break  # no model at all is not a matter of the seed: do not pay for more trials
        if k >= 2 and mixed and out[0][1] == 0 and out[1][1] == 0:
            break  # neither rule set found a model
        if k == 2 and _consistent(out[0][0], out[1][0], conf):
            break  # two trials agree: a third cannot change the median or the selection
        out.append(_map_trial(pycolmap, database, image_dir, models, names, conf, k,
                              relaxed_k, seed))
    if needs_cross_check(out, conf):
        k = len(out)
        out.append(_map_trial(pycolmap, database, image_dir, models, names, conf, k, True,
                              conf.seed + k))
    return out


def verification_trials(
    pycolmap: Any, database: Path, image_dir: Path, models: Path, names: list[str],
    conf: PoseRecoveryConfig, timings: dict[str, float],
) -> list[tuple[Trial, int, Path]]:
    """The global mapper's trials: trial k maps the matches verified with RANSAC seed
    ``seed + k`` (trial 0: the database as matched; the others: :func:`reverify`), all with
    the mapper seeded ``seed``.

    Why: given its matches the global mapper is deterministic (seeds 0-9 gave one model on
    every calibration clip tried), so trials on one database coincide; the seed-dependence of
    the result lies in the verified inlier sets. On hard02 / orbit_left_10deg+dolly_in_15pct
    (448x256x14) seeds 0-7 of the verification give ATE 0.32-1.10% of the path extent in two
    modes, the better one with the lower mean reprojection error (docs/protocol.md).

    A trial whose verified matches equal an earlier trial's is that trial again (recorded
    with ``same_as``, not mapped). When trial 1 equals trial 0, or its model coincides with
    trial 0's (:func:`benchmark.sfm.trials.coincide`), the verification's seed does not
    matter on this clip and the trials stop. A lone model gets a cross-check trial
    as with :func:`needs_cross_check`. Re-verification's CPU time is added to
    ``timings["verification"]``."""
    out: list[tuple[Trial, int, Path]] = []
    matches: list[Any] = []  # verified matches of trial k's database (read once each)
    n = max(1, conf.num_trials)
    k = 0
    while k < n or (k == n and needs_cross_check(out, conf)):
        if k >= 2 and not any(count for _, count, _ in out):
            break  # two verifications found no model: not a matter of the seed
        seed = conf.seed + k
        db, same = database, None
        if k:
            start = time.process_time()
            db = models / f"database{k}.db"
            models.mkdir(parents=True, exist_ok=True)
            reverify(pycolmap, database, db, conf, seed)
            if not matches:
                matches.append(verified_geometry(pycolmap, database))
            matches.append(verified_geometry(pycolmap, db))
            same = next((j for j in range(k) if matches[j] == matches[k]), None)
            timings["verification"] = timings.get("verification", 0.0) + (
                time.process_time() - start)
        if same is None:
            out.append(_map_trial(pycolmap, db, image_dir, models, names, conf, k, False,
                                  conf.seed, trial_seed=seed))
        else:  # the same matches give the same model: recorded, not mapped again
            trial, count, folder = out[same]
            first = trial.seed if trial.same_as is None else trial.same_as
            out.append((replace(trial, seed=seed, same_as=first, dropped={}), count, folder))
        k += 1
        if k == 2 and (same is not None or coincide(out[0][0], out[1][0])):
            break  # trial 1 repeats trial 0, or a few inliers differ and the model does not
    return out


def needs_cross_check(out: list[tuple[Trial, int, Path]], conf: PoseRecoveryConfig) -> bool:
    """Mixed rules with checks on, and exactly one trial found a model: nothing cross-checks
    it. Why: on the calibration's hard02 / pedestal_up_15pct (448x256x14, seed 0) COLMAP's
    rules found no model and the lone relaxed model was 19% of the path extent off, with
    every frame plausible; the relaxed trial on the next seed (0.47%) disagrees with it, so
    the clip ends flagged or keeps the better model instead of scoring a silent 19%."""
    if conf.init_rules != "mixed" or not conf.plausibility:
        return False
    return sum(1 for _, count, _ in out if count > 0) == 1


def _map_trial(
    pycolmap: Any, database: Path, image_dir: Path, models: Path, names: list[str],
    conf: PoseRecoveryConfig, k: int, relaxed_k: bool, seed: int,
    trial_seed: int | None = None,
) -> tuple[Trial, int, Path]:
    """Mapping trial ``k`` (rules, mapper seed) on ``database``; its largest model. The trial
    is recorded under ``trial_seed`` (default: the mapper's seed)."""
    trial_seed = seed if trial_seed is None else trial_seed
    # the global mapper has no initial pair: its trials differ by seed only
    rules = "global" if conf.mapper == "global" else "relaxed" if relaxed_k else "default"
    folder = models / f"{rules}{k}"
    folder.mkdir(parents=True, exist_ok=True)
    pycolmap.set_random_seed(seed)
    options = mapper_options(pycolmap, conf, seed, relaxed_k)
    if conf.mapper == "incremental":
        recs = pycolmap.incremental_mapping(database, image_dir, folder, options)
    else:
        recs = pycolmap.global_mapping(database, image_dir, folder, options)
    if not recs:
        trial = Trial(trial_seed, [None] * len(names), [None] * len(names), [0] * len(names),
                      init_rules=rules)
        return trial, 0, folder
    best = largest_model(recs)
    w2c, reproj, obs, depth = frames_of(best, names)
    trial = Trial(trial_seed, w2c, reproj, obs, float(best.compute_mean_reprojection_error()),
                  int(best.num_points3D()), depth, rules)
    # keep only the chosen model of this trial on disk (real_videos reads it back)
    for key, rec in recs.items():
        if rec is not best:
            shutil.rmtree(folder / str(key), ignore_errors=True)
    return trial, len(recs), folder


def _consistent(a: Trial, b: Trial, conf: PoseRecoveryConfig) -> bool:
    """Two trials register the same frames and agree on every one within the consensus
    tolerance (so no frame is dropped for disagreement and the clip is stable)."""
    return conf.plausibility and coincide(a, b, MAX_DISAGREEMENT)


def _enough(selection: Selection, num_frames: int, conf: PoseRecoveryConfig) -> bool:
    if selection.trial is None:
        return False
    kept = [i for i in selection.trial.plausible if i not in selection.dropped]
    return len(kept) >= conf.min_registered * num_frames


def recover_poses(
    image_paths: list[Path],
    K: np.ndarray,
    work_dir: str | Path,
    conf: PoseRecoveryConfig | None = None,
) -> RecoveredPoses:
    r"""Run COLMAP on ``image_paths`` (frame order) with fixed intrinsics ``K``.

    Protocol (defaults; docs/protocol.md): SIFT and verified matches once; the mapping
    trials of :func:`trial_plan` (``mixed``: one with COLMAP's initial-pair rules, one with
    relaxed rules, the fallback and cross-check of the first; other ``init_rules`` map with one
    rule set and retry with relaxed rules only when too few plausible frames register); the
    trial chosen by :func:`benchmark.sfm.trials.select_trial` (no ground truth), its implausible
    frames
    set to None (``dropped`` says why). Without any model, rotation-dominant clips (pan, tilt,
    roll) get rotation-only poses from pairwise homographies (``kind="rotation_only"``).

    Args:
        image_paths: one image per frame, all in one folder, in frame order.
        K: (3, 3) intrinsics in pixels of these images (COLMAP's pixel-centre convention).
        work_dir: scratch folder for the database and models; ``sfm.log`` stays there, and
            ``models/0`` holds the chosen trial's model.
        conf: options (defaults: the benchmark protocol).

    Returns:
        RecoveredPoses; ``status == "failed"`` with a reason when ``K`` is not a valid
        pinhole matrix, fewer than ``conf.min_registered`` of the frames register (after the
        plausibility rules), the trials disagree (``unstable``), COLMAP builds no model and
        the clip is not rotation-dominant (the reason then says how many frames had SIFT
        keypoints and how many inlier matches there were) or COLMAP errors.
    """
    import pycolmap  # native library (~0.3 s): loaded only when a clip is posed, so the
    # scoring and report stages, which import this package for poses.json, stay light.
    # Keep it lazy: with pycolmap 4.2.1's wheel, a process that imports pycolmap before
    # torch and then encodes a PNG with OpenCV aborts ("double free or corruption" in
    # libpng's deflateEnd; seen 2026-12-04 in a script that rendered clips after importing
    # pycolmap). Loaded after them, as here, it does not.

    conf = conf or PoseRecoveryConfig()
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    log_path = work / "sfm.log"
    log_path.write_text("")
    database = work / "database.db"
    models = work / "models"
    trials_dir = work / "trials"
    for stale in (database, models, trials_dir):
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    models.mkdir()
    paths = [Path(p) for p in image_paths]
    image_dir = paths[0].parent if paths else work
    if any(p.parent != image_dir for p in paths):
        raise ValueError("all frames must lie in one folder")
    names = [p.name for p in paths]
    n = len(paths)
    none: list[np.ndarray | None] = [None] * n
    config = asdict(conf)
    try:
        K = validate_intrinsics(K, "intrinsics K")
    except CameraFileError as exc:  # a method's K: recorded, COLMAP would fail obscurely
        return RecoveredPoses(none, "failed", f"invalid {exc}", 0, config)
    if n < 2:
        return RecoveredPoses(none, "failed", f"{n} frame(s): nothing to match", 0, config)

    timings: dict[str, float] = {}
    # One pass of run_trials per initial-pair rule set; the global mapper has no initial
    # pair, so a second (relaxed) pass would repeat its trials exactly: one pass.
    rule_sets = [False] if conf.mapper == "global" else {
        "relaxed": [True], "default": [False], "mixed": [False]}.get(
        conf.init_rules, [False, True])
    try:
        pycolmap.set_random_seed(conf.seed)
        with capture_native_output(log_path):
            extract_and_match(pycolmap, database, image_dir, names, K, conf, timings)
            start = time.process_time()
            runs: list[tuple[Trial, int, Path]] = []
            selection = Selection(None, {}, None, False)
            rotation = None
            for relaxed in rule_sets:
                runs += run_trials(pycolmap, database, image_dir, trials_dir, names, conf,
                                   relaxed, timings)
                selection = select_trial([t for t, _, _ in runs], plausibility=conf.plausibility)
                if _enough(selection, n, conf):
                    break
                if selection.trial is None and conf.rotation_fallback and "rotation" not in timings:
                    # No model and the matches are explained by homographies: no parallax,
                    # so relaxed initial-pair rules cannot triangulate either; skip them.
                    timings["mapping"] = time.process_time() - start
                    rot_start = time.process_time()
                    rotation = rotation_only(pycolmap, database, names, K, conf)
                    timings["rotation"] = time.process_time() - rot_start
                    start = time.process_time() - timings["mapping"]
                    if rotation is not None:
                        break
            # re-verification is matching work: counted there, not as mapping
            timings["mapping"] = time.process_time() - start - timings.get("verification", 0)
    except Exception as exc:  # COLMAP errors become a recorded failure, never a crash
        log.warning("pose recovery failed: %s", exc)
        return RecoveredPoses(none, "failed", f"COLMAP error: {exc}", 0, config,
                              timings=timings)

    verdicts = [t.verdict() for t, _, _ in runs]
    chosen = selection.trial
    if chosen is None:
        why = database_summary(pycolmap, database, n)
        if rotation is not None:
            w2c, note = rotation
            result = RecoveredPoses(
                w2c, "ok", f"rotation only: SfM reconstructed no model{why}; {note}; "
                "translation undefined", 0, config, kind="rotation_only", trials=verdicts,
                timings=timings,
            )
            return _gate(result, conf)
        return RecoveredPoses(none, "failed", f"COLMAP reconstructed no model{why}", 0, config,
                              trials=verdicts, timings=timings)
    _keep_chosen_model(trials_dir, models, next(f for t, _, f in runs if t is chosen))
    w2c = [None if i in selection.dropped else p for i, p in enumerate(chosen.w2c)]
    result = RecoveredPoses(
        w2c, "ok", "", next(m for t, m, _ in runs if t is chosen), config, kind="sfm",
        trials=verdicts, dropped=dict(sorted(selection.dropped.items())),
        init_rules=chosen.init_rules, unstable=selection.unstable, timings=timings,
    )
    if selection.unstable:
        result.status = "failed"
        result.reason = (
            f"unstable: the chosen mapping trial (seed {chosen.seed}, {_rules(chosen)}) "
            f"and the others disagree "
            f"by {selection.disagreement:.1%} of the path's scale (median over frames; "
            f"limit {MAX_DISAGREEMENT:.0%})"
        )
    else:
        result = _gate(result, conf)
    if result.status == "failed" and conf.rotation_fallback and "rotation" not in timings:
        # A partial or unstable model of a clip the homographies explain (a pan with a
        # little parallax: trials disagree on translations there is nothing to measure
        # of, e.g. calibration hard00 / pan_left_15deg, 448x256x14, seed 1): its rotations
        # are still measurable.
        rot_start = time.process_time()
        rotation = rotation_only(pycolmap, database, names, K, conf)
        timings["rotation"] = time.process_time() - rot_start
        if rotation is not None:
            w2c_rot, note = rotation
            rot_result = _gate(RecoveredPoses(
                w2c_rot, "ok", f"rotation only: SfM {result.reason}; {note}; translation "
                "undefined", result.num_models, config, kind="rotation_only", trials=verdicts,
                init_rules=result.init_rules, timings=timings,
            ), conf)
            if rot_result.status == "ok":
                return rot_result
    return result


def _rules(trial: Trial) -> str:
    if trial.init_rules == "global":
        return "global mapper"
    return f"{trial.init_rules} initial-pair rules"


def _gate(result: RecoveredPoses, conf: PoseRecoveryConfig) -> RecoveredPoses:
    """The registration threshold; the reason names the frames the plausibility rules
    dropped."""
    if result.registered_ratio < conf.min_registered:
        result.status = "failed"
        result.reason = (
            f"registered {result.num_registered}/{result.num_frames} frames "
            f"< {conf.min_registered:.0%}"
        )
    if result.dropped:
        named = "; ".join(f"frame {i}: {why}" for i, why in sorted(result.dropped.items()))
        result.reason = (result.reason + "; " if result.reason else "") + (
            f"treated as unregistered: {named}")
    return result


def _keep_chosen_model(trials_dir: Path, models: Path, folder: Path) -> None:
    """Move the chosen trial's model to ``models/0`` and delete the other trials' models."""
    kept = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    if kept:
        shutil.move(str(kept[0]), str(models / "0"))
    shutil.rmtree(trials_dir, ignore_errors=True)
