"""One run per method, clip and seed: generate -> poses -> score, and the exact reference
render the fidelity metrics compare against. generate, poses and score are the per-clip chain
a cluster profile may group (configs/profiles/slurm: TRAJBENCH_SLURM_GROUP_CLIPS)."""


rule generate:
    """One clip from a method preset; failures are recorded in meta.json, not raised."""
    input:
        rules.scene.output,
        camera=rules.camera.output,
        video=TASK.video_input,
        edit=TASK.edit_input,
    output:
        RUN + "/meta.json",
    log:
        RUN + "/generate.log",
    benchmark:
        BENCH + "/generate/{method}/f{frames}/{scene}__{camera}/seed{seed}.tsv"
    params:
        video=TASK.video_arg,
        edit=TASK.edit_arg,
    resources:
        # Declared by each method preset (`resources:`; default one GPU and 32 GB of host memory).
        gpu=lambda wc: preset_resources(wc.method)["gpu"],
        mem_mb=lambda wc, attempt: preset_resources(wc.method)["mem_mb"] * attempt,
    shell:
        "{TRAJBENCH} generate --method {wildcards.method:q} "
        "--scene-dir {R:q}/scenes/{wildcards.scene} "
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
    """Exact render of a synthetic scene along the path: the fidelity reference (edit tasks:
    of the edited scene, the exact edited video)."""
    input:
        rules.scene.output,
        camera=rules.camera.output,
        edit=TASK.edit_input,
    output:
        done=R + "/reference/f{frames}/{scene}__{camera}/done",
    log:
        R + "/logs/reference/f{frames}/{scene}__{camera}.log",
    benchmark:
        BENCH + "/reference/f{frames}/{scene}__{camera}.tsv"
    params:
        edit=TASK.edit_arg,
    shell:
        "{TRAJBENCH} render-reference --scene-dir {R:q}/scenes/{wildcards.scene} "
        "--camera-file {input.camera:q} {params.edit} --out \"$(dirname {output.done:q})\" "
        "> {log:q} 2>&1 && touch {output.done:q}"


rule score:
    """ATE / RPE (evo), CamI2V errors, on synthetic scenes PSNR/SSIM to the exact render, the
    trajectory end-point error of runs that saved their trajectories, and on edit tasks
    track agreement with the original video and persistence of the edit."""
    input:
        poses=RUN + "/poses.json",
        camera=R + "/cameras/f{frames}/{scene}/{camera}.json",
        reference=TASK.reference_input,
        video=TASK.score_video_input,
        edit=TASK.edit_input,
    output:
        RUN + "/metrics.json",
    log:
        RUN + "/score.log",
    benchmark:
        BENCH + "/score/{method}/f{frames}/{scene}__{camera}/seed{seed}.tsv"
    params:
        ref_arg=TASK.reference_arg,
        edit=TASK.score_args,
    shell:
        "{TRAJBENCH} score --run-dir \"$(dirname {input.poses:q})\" "
        "--camera-file {input.camera:q} {params.ref_arg} {params.edit} > {log:q} 2>&1"
