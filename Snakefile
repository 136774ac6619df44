"""{TRAJBENCH} workflow: suite -> scenes, camera paths -> generation -> poses -> metrics ->
tables and plots. Wires files only; every rule calls a tested `trajbench` subcommand."""

import re
import shlex
import sys

from benchmark.stages.generate import check_method_names, preset_resources
from benchmark.reporting.paper_tables import tables_for_suite
from benchmark.config.suites import check_results_folder, load_suite, validate


configfile: "configs/config.yaml"


report: "report/workflow.rst"


# Every job is single-threaded (parallelism comes from running jobs side by side): without
# this, each job's torch/OpenMP spins one thread per core and concurrent jobs thrash.
shell.prefix("export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1; ")


# --config values nested in lists and mappings arrive as strings: coerced by the schema's types
config = validate("config", config, "workflow config", coerce=True)
SUITE = load_suite(config["suite"])
# Method -> frame counts it runs at (config.yaml's list runs each at all the suite's counts).
METHOD_FRAMES = (
    {name: SUITE.frame_counts for name in config["methods"]}
    if config["methods"]
    else SUITE.methods
)
METHODS = list(METHOD_FRAMES)
check_method_names(METHODS)  # a typo stops here, with the closest names
SEEDS = config["seeds"] or SUITE.seeds
POSES = {"matcher": "sequential", "mapper": "incremental", "threads": 1, **config["poses"]}
# Every path in a shell command below is quoted ({R:q}, {output:q}, shlex.quote in params), so
# a results folder may hold spaces or quotes; braces and line breaks are refused here.
R = f"{check_results_folder(config['results'])}/{SUITE.name}"
# The `trajbench` CLI of the interpreter running Snakemake (works without an activated venv).
PYTHON = shlex.quote(sys.executable)
TRAJBENCH = f"{PYTHON} -m benchmark.cli"
RUN = R + "/{method}/f{frames}/{scene}__{camera}/seed{seed}"
# Snakemake `benchmark:` files (wall s, cpu_time, max_rss per job), one folder per rule:
# `python -m bench.workflow <results>/<suite>` sums them by rule.
BENCH = R + "/benchmarks"
# Video suites re-shoot an input video per scene and frame count (paper Table 2); editing
# suites keep its motion from an edited first frame (paper Sec. 4.3).
VIDEO = R + "/videos/f{frames}/{scene}"
EDIT = R + "/edits/{scene}"
TABLE = "table_edit" if SUITE.is_editing else "table2" if SUITE.is_video else "table1"
METHODS_ARG = " ".join(shlex.quote(m) for m in METHODS)

def one_of(names):
    """Wildcard regex matching exactly the configured names."""
    return "|".join(re.escape(str(name)) for name in names)


# Run on the submitting host under a cluster executor: `all` does nothing, and downloads need
# the network that compute nodes often lack.
localrules:
    all,
    fetch_image,
    fetch_edited_image,


wildcard_constraints:
    method=one_of(METHODS),
    scene=one_of(SUITE.scenes),
    camera=one_of(SUITE.cameras),
    frames=one_of(SUITE.frame_counts),
    seed=one_of(SEEDS),


def all_metrics():
    return [
        f"{R}/{method}/{combo.key}/seed{seed}/metrics.json"
        for method, frame_counts in METHOD_FRAMES.items()
        for combo in SUITE.combinations(frame_counts)
        for seed in SEEDS
    ]


def preview_targets():
    """MP4 previews for the report: each method's first two clips (first seed)."""
    return [
        f"{R}/previews/{method}/{combo.key}.mp4"
        for method, frame_counts in METHOD_FRAMES.items()
        for combo in SUITE.combinations(frame_counts)[:2]
    ]


ATTENTION_METHODS = [m for m in METHODS if m.startswith("trajattn")]
PAPER_TABLES = tables_for_suite(SUITE.name)


rule all:
    input:
        f"{R}/tables/{TABLE}.md",
        f"{R}/plots/errors.png",
        preview_targets(),
        [f"{R}/plots/attention/{m}/attention.png" for m in ATTENTION_METHODS],
        [f"{R}/tables/paper_{name}.md" for name in PAPER_TABLES],


rule fetch_image:
    """Real-image suites: download a scene's image by URL and check its sha256."""
    output:
        R + "/scenes/{scene}/source",
    log:
        R + "/logs/fetch/{scene}.log",
    params:
        url=lambda wc: SUITE.scene(wc.scene)["url"],
        sha256=lambda wc: SUITE.scene(wc.scene)["sha256"],
    shell:
        "{TRAJBENCH} fetch-image --url {params.url:q} --sha256 {params.sha256:q} --out {output:q} "
        "> {log:q} 2>&1"


rule scene:
    """Conditioning view of a scene: image, exact or estimated depth, camera."""
    input:
        lambda wc: [] if SUITE.is_synthetic else f"{R}/scenes/{wc.scene}/source",
    output:
        image=R + "/scenes/{scene}/image.png",
        depth=R + "/scenes/{scene}/depth.npy",
        view=R + "/scenes/{scene}/view.json",
    log:
        R + "/logs/scene/{scene}.log",
    benchmark:
        BENCH + "/scene/{scene}.tsv"
    resources:
        gpu=0 if SUITE.is_synthetic else 1,  # depth model for real images
    shell:
        "{TRAJBENCH} prepare-scene --suite {SUITE.path:q} --scene {wildcards.scene} "
        "--out {R:q}/scenes/{wildcards.scene} > {log:q} 2>&1"


rule video:
    """Video suites: the scene's input video (frames, per-frame depth, its own cameras)."""
    input:
        rules.scene.output,
    output:
        camera=VIDEO + "/camera.json",
    log:
        R + "/logs/video/f{frames}/{scene}.log",
    benchmark:
        BENCH + "/video/f{frames}/{scene}.tsv"
    resources:
        gpu=0 if SUITE.is_synthetic else 1,  # depth model for real clips
    shell:
        "{TRAJBENCH} prepare-video --suite {SUITE.path:q} --scene {wildcards.scene} "
        "--scene-dir {R:q}/scenes/{wildcards.scene} --frames {wildcards.frames} "
        "--out \"$(dirname {output.camera:q})\" > {log:q} 2>&1"


def video_input(wc):
    return f"{R}/videos/f{wc.frames}/{wc.scene}/camera.json" if SUITE.is_video else []


def video_arg(wc):
    if not SUITE.is_video:
        return ""
    return "--video-dir " + shlex.quote(f"{R}/videos/f{wc.frames}/{wc.scene}")


rule fetch_edited_image:
    """Real editing suites: download a clip's edited first frame and check its sha256."""
    output:
        EDIT + "/source",
    log:
        R + "/logs/fetch_edit/{scene}.log",
    params:
        url=lambda wc: SUITE.scene(wc.scene)["edited_image"]["url"],
        sha256=lambda wc: SUITE.scene(wc.scene)["edited_image"]["sha256"],
    shell:
        "{TRAJBENCH} fetch-image --url {params.url:q} --sha256 {params.sha256:q} --out {output:q} "
        "> {log:q} 2>&1"


rule edit:
    """Editing suites: the scene's edited first frame and the edit's recipe (real clips: the
    fetched edited frame, cropped like the clip)."""
    input:
        rules.scene.output,
        edited=lambda wc: [] if SUITE.is_synthetic else f"{R}/edits/{wc.scene}/source",
    output:
        image=EDIT + "/image.png",
        recipe=EDIT + "/edit.json",
    log:
        R + "/logs/edit/{scene}.log",
    benchmark:
        BENCH + "/edit/{scene}.tsv"
    shell:
        "{TRAJBENCH} prepare-edit --suite {SUITE.path:q} --scene {wildcards.scene} "
        "--scene-dir {R:q}/scenes/{wildcards.scene} --out \"$(dirname {output.recipe:q})\" "
        "> {log:q} 2>&1"


def edit_input(wc):
    return f"{R}/edits/{wc.scene}/edit.json" if SUITE.is_editing else []


def edit_arg(wc):
    if not SUITE.is_editing:
        return ""
    return "--edit-dir " + shlex.quote(f"{R}/edits/{wc.scene}")


rule camera:
    """Parametric camera path from the scene's view, scaled by its median depth (video
    suites: applied on top of the input video's cameras)."""
    input:
        rules.scene.output,
        video=video_input,
    output:
        R + "/cameras/f{frames}/{scene}/{camera}.json",
    log:
        R + "/logs/camera/f{frames}/{scene}/{camera}.log",
    benchmark:
        BENCH + "/camera/f{frames}/{scene}/{camera}.tsv"
    params:
        video=video_arg,
    shell:
        "{TRAJBENCH} make-camera --scene-dir {R:q}/scenes/{wildcards.scene} "
        "--camera {wildcards.camera:q} --frames {wildcards.frames} {params.video} "
        "--out {output:q} > {log:q} 2>&1"


rule generate:
    """One clip from a method preset; failures are recorded in meta.json, not raised."""
    input:
        rules.scene.output,
        camera=rules.camera.output,
        video=video_input,
        edit=edit_input,
    output:
        RUN + "/meta.json",
    log:
        RUN + "/generate.log",
    benchmark:
        BENCH + "/generate/{method}/f{frames}/{scene}__{camera}/seed{seed}.tsv"
    params:
        video=video_arg,
        edit=edit_arg,
    resources:
        # Declared by each method preset (`resources:`; default one GPU and 32 GB of host memory).
        gpu=lambda wc: preset_resources(wc.method)["gpu"],
        mem_mb=lambda wc, attempt: preset_resources(wc.method)["mem_mb"] * attempt,
    shell:
        "{TRAJBENCH} generate --method {wildcards.method:q} --scene-dir {R:q}/scenes/{wildcards.scene} "
        "--camera-file {input.camera:q} --seed {wildcards.seed} {params.video} {params.edit} "
        "--out \"$(dirname {output:q})\" > {log:q} 2>&1"


rule poses:
    """Camera poses recovered from the frames with COLMAP (sfm/sfm.log beside them)."""
    input:
        RUN + "/meta.json",
    output:
        RUN + "/poses.json",
    log:
        RUN + "/poses.log",
    benchmark:
        BENCH + "/poses/{method}/f{frames}/{scene}__{camera}/seed{seed}.tsv"
    threads: POSES["threads"]
    shell:
        "{TRAJBENCH} poses --run-dir \"$(dirname {input:q})\" --matcher {POSES[matcher]} "
        "--mapper {POSES[mapper]} --threads {threads} > {log:q} 2>&1"


rule reference:
    """Exact render of a synthetic scene along the path: the fidelity reference (editing
    suites: of the edited scene, the exact edited video)."""
    input:
        rules.scene.output,
        camera=rules.camera.output,
        edit=edit_input,
    output:
        done=R + "/reference/f{frames}/{scene}__{camera}/done",
    log:
        R + "/logs/reference/f{frames}/{scene}__{camera}.log",
    benchmark:
        BENCH + "/reference/f{frames}/{scene}__{camera}.tsv"
    params:
        edit=edit_arg,
    shell:
        "{TRAJBENCH} render-reference --scene-dir {R:q}/scenes/{wildcards.scene} "
        "--camera-file {input.camera:q} {params.edit} --out \"$(dirname {output.done:q})\" "
        "> {log:q} 2>&1 && touch {output.done:q}"


def reference_input(wc):
    if not SUITE.is_synthetic:
        return []
    return f"{R}/reference/f{wc.frames}/{wc.scene}__{wc.camera}/done"


rule score:
    """ATE / RPE (evo), CamI2V errors, on synthetic scenes PSNR/SSIM to the exact render, the
    trajectory end-point error of runs that saved their trajectories, and on editing suites
    track agreement with the original video and persistence of the edit."""
    input:
        poses=RUN + "/poses.json",
        camera=R + "/cameras/f{frames}/{scene}/{camera}.json",
        reference=reference_input,
        video=lambda wc: video_input(wc) if SUITE.is_editing else [],
        edit=edit_input,
    output:
        RUN + "/metrics.json",
    log:
        RUN + "/score.log",
    benchmark:
        BENCH + "/score/{method}/f{frames}/{scene}__{camera}/seed{seed}.tsv"
    params:
        ref_arg=lambda wc, input: (
            "--reference-dir "
            + shlex.quote(f"{R}/reference/f{wc.frames}/{wc.scene}__{wc.camera}")
            if input.reference
            else ""
        ),
        edit=lambda wc: f"{video_arg(wc)} {edit_arg(wc)}" if SUITE.is_editing else "",
    shell:
        "{TRAJBENCH} score --run-dir \"$(dirname {input.poses:q})\" --camera-file {input.camera:q} "
        "{params.ref_arg} {params.edit} > {log:q} 2>&1"


def all_generated():
    return [m.replace("/metrics.json", "/meta.json") for m in all_metrics()]


def all_references():
    if not SUITE.is_synthetic:
        return []
    return sorted({
        f"{R}/reference/{combo.key}/done"
        for frame_counts in METHOD_FRAMES.values()
        for combo in SUITE.combinations(frame_counts)
    })


rule fid:
    """FID/KID of each method's frames (one value per method and frame count) against the
    exact renders (synthetic suites) or the conditioning images; without Inception weights
    the rows say why, and the tables show '-' with that reason."""
    input:
        all_generated(),
        all_references(),
    output:
        R + "/fid.csv",
    log:
        R + "/logs/fid.log",
    benchmark:
        BENCH + "/fid/run.tsv"
    resources:
        gpu=0,
    shell:
        "{TRAJBENCH} fid --results {R:q} --out {output:q} {METHODS_ARG} > {log:q} 2>&1"


rule aggregate:
    """metrics.csv, paper-style tables (md, tex, csv) and plots of the whole suite."""
    input:
        all_metrics(),
        fid=R + "/fid.csv",
    output:
        table=R + f"/tables/{TABLE}.md",
        tex=R + f"/tables/{TABLE}.tex",
        table_csv=report(R + f"/tables/{TABLE}.csv", caption="report/table.rst",
                         category="Tables"),
        summary=R + "/tables/summary.csv",
        csv=R + "/metrics.csv",
        errors=report(R + "/plots/errors.png", caption="report/errors.rst", category="Plots"),
        errors_pdf=R + "/plots/errors.pdf",
        trajectories=report(directory(R + "/plots/trajectories"), patterns=["{frames}/{clip}.png"],
                            caption="report/trajectories.rst", category="Trajectories"),
    log:
        R + "/logs/aggregate.log",
    benchmark:
        BENCH + "/aggregate/run.tsv"
    shell:
        "{TRAJBENCH} aggregate --results {R:q} --out {R:q} --title 'trajbench: {SUITE.name}' "
        "--table {TABLE} "
        "> {log:q} 2>&1"


rule paper_table:
    """The paper's published table beside ours (configs/paper/{name}.yaml)."""
    input:
        R + "/tables/summary.csv",
    output:
        md=R + "/tables/paper_{name}.md",
        csv=report(R + "/tables/paper_{name}.csv", caption="report/paper.rst",
                   category="Paper vs ours"),
    log:
        R + "/logs/paper_{name}.log",
    benchmark:
        BENCH + "/paper_table/{name}.tsv"
    shell:
        "{PYTHON} -m benchmark.reporting.paper_tables --summary {input:q} --table {wildcards.name} "
        "--out {R:q}/tables --suite {SUITE.name} > {log:q} 2>&1"


rule preview:
    """H.264 preview of a run beside its reference, for the HTML report."""
    input:
        meta=R + "/{method}/f{frames}/{scene}__{camera}/seed" + str(SEEDS[0]) + "/meta.json",
        reference=reference_input,
    output:
        report(R + "/previews/{method}/f{frames}/{scene}__{camera}.mp4",
               caption="report/preview.rst", category="Videos", subcategory="{method}"),
    log:
        R + "/logs/preview/{method}/f{frames}/{scene}__{camera}.log",
    benchmark:
        BENCH + "/preview/{method}/f{frames}/{scene}__{camera}.tsv"
    params:
        ref_arg=lambda wc, input: (
            "--reference-dir "
            + shlex.quote(f"{R}/reference/f{wc.frames}/{wc.scene}__{wc.camera}")
            if input.reference
            else ""
        ),
        # editing: show the edited first frame, the one the methods were given
        image_dir="edits" if SUITE.is_editing else "scenes",
    shell:
        "{TRAJBENCH} preview --run-dir \"$(dirname {input.meta:q})\" "
        "--scene-dir {R:q}/{params.image_dir}/{wildcards.scene} {params.ref_arg} --out {output:q} "
        "> {log:q} 2>&1"


def attention_clip():
    """The clip the attention figure is made on: the suite's first combination."""
    return SUITE.combinations([max(SUITE.frame_counts)])[0]


rule attention:
    """Fig. 2: temporal vs trajectory attention maps of a trajattn preset on one clip; a card
    saying why when the model cannot run here."""
    input:
        scene=lambda wc: [f"{R}/scenes/{attention_clip().scene}/{name}"
                          for name in ("image.png", "depth.npy", "view.json")],
        camera=lambda wc: (
            f"{R}/cameras/f{attention_clip().num_frames}/{attention_clip().scene}/"
            f"{attention_clip().camera}.json"
        ),
    output:
        png=report(R + "/plots/attention/{method}/attention.png",
                   caption="report/attention.rst", category="Attention maps"),
    log:
        R + "/logs/attention/{method}.log",
    benchmark:
        BENCH + "/attention/{method}.tsv"
    resources:
        gpu=1,
    params:
        scene=lambda wc: attention_clip().scene,
    shell:
        "{PYTHON} -m benchmark.stages.attention_maps --preset {wildcards.method:q} --suite {SUITE.path:q} "
        "--scene {params.scene} --scene-dir {R:q}/scenes/{params.scene} "
        "--camera {input.camera:q} --out \"$(dirname {output.png:q})\" --card-if-unavailable "
        "> {log:q} 2>&1"
