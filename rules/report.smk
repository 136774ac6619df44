"""Suite-level outputs: FID/KID, metrics.csv with tables and plots, the paper's tables beside
ours, MP4 previews and the attention-map figure; `report()` outputs feed `snakemake --report`
(captions in report/)."""


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
        table=R + f"/tables/{TASK.table}.md",
        tex=R + f"/tables/{TASK.table}.tex",
        table_csv=report(R + f"/tables/{TASK.table}.csv", caption="../report/table.rst",
                         category="Tables"),
        summary=R + "/tables/summary.csv",
        csv=R + "/metrics.csv",
        errors=report(R + "/plots/errors.png", caption="../report/errors.rst",
                      category="Plots"),
        errors_pdf=R + "/plots/errors.pdf",
        trajectories=report(directory(R + "/plots/trajectories"),
                            patterns=["{frames}/{clip}.png"],
                            caption="../report/trajectories.rst", category="Trajectories"),
    log:
        R + "/logs/aggregate.log",
    benchmark:
        BENCH + "/aggregate/run.tsv"
    # the last job: its per-clip trajectory plots are drawn in parallel. A number, not
    # workflow.cores (undefined without --cores, e.g. under --report); Snakemake lowers it to
    # --cores locally, and 4 is a modest request on a cluster.
    threads: 4
    shell:
        "{TRAJBENCH} aggregate --results {R:q} --out {R:q} --title 'trajbench: {SUITE.name}' "
        "--table {TASK.table} --threads {threads} "
        "> {log:q} 2>&1"


rule paper_table:
    """The paper's published table beside ours (configs/paper/{name}.yaml)."""
    input:
        R + "/tables/summary.csv",
    output:
        md=R + "/tables/paper_{name}.md",
        csv=report(R + "/tables/paper_{name}.csv", caption="../report/paper.rst",
                   category="Paper vs ours"),
    log:
        R + "/logs/paper_{name}.log",
    benchmark:
        BENCH + "/paper_table/{name}.tsv"
    shell:
        "{PYTHON} -m benchmark.reporting.paper_tables --summary {input:q} "
        "--table {wildcards.name} --out {R:q}/tables --suite {SUITE.name} > {log:q} 2>&1"


rule preview:
    """H.264 preview of a run beside its reference, for the HTML report."""
    input:
        meta=R + "/{method}/f{frames}/{scene}__{camera}/seed" + str(SEEDS[0]) + "/meta.json",
        reference=TASK.reference_input,
    output:
        report(R + "/previews/{method}/f{frames}/{scene}__{camera}.mp4",
               caption="../report/preview.rst", category="Videos", subcategory="{method}"),
    log:
        R + "/logs/preview/{method}/f{frames}/{scene}__{camera}.log",
    benchmark:
        BENCH + "/preview/{method}/f{frames}/{scene}__{camera}.tsv"
    params:
        ref_arg=TASK.reference_arg,
        # edit tasks: show the edited first frame, the one the methods were given
        image_dir=TASK.preview_image_dir,
    shell:
        "{TRAJBENCH} preview --run-dir \"$(dirname {input.meta:q})\" "
        "--scene-dir {R:q}/{params.image_dir}/{wildcards.scene} {params.ref_arg} --out {output:q} "
        "> {log:q} 2>&1"


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
                   caption="../report/attention.rst", category="Attention maps"),
    log:
        R + "/logs/attention/{method}.log",
    benchmark:
        BENCH + "/attention/{method}.tsv"
    resources:
        gpu=1,
    params:
        scene=lambda wc: attention_clip().scene,
    shell:
        "{PYTHON} -m benchmark.stages.attention_maps --preset {wildcards.method:q} "
        "--suite {SUITE.path:q} --scene {params.scene} --scene-dir {R:q}/scenes/{params.scene} "
        "--camera {input.camera:q} --out \"$(dirname {output.png:q})\" --card-if-unavailable "
        "> {log:q} 2>&1"
