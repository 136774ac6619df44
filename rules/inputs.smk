"""Inputs of every run: scenes (fetched or procedural), input videos and edits where the task
has them, and the parametric camera paths."""


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
        TASK.scene_source,
    output:
        image=R + "/scenes/{scene}/image.png",
        depth=R + "/scenes/{scene}/depth.npy",
        view=R + "/scenes/{scene}/view.json",
    log:
        R + "/logs/scene/{scene}.log",
    benchmark:
        BENCH + "/scene/{scene}.tsv"
    resources:
        gpu=TASK.depth_gpus,  # depth model for real images
    shell:
        "{TRAJBENCH} prepare-scene --suite {SUITE.path:q} --scene {wildcards.scene} "
        "--out {R:q}/scenes/{wildcards.scene} > {log:q} 2>&1"


rule video:
    """Video and edit tasks: the scene's input video (frames, per-frame depth, its own
    cameras)."""
    input:
        rules.scene.output,
    output:
        camera=VIDEO + "/camera.json",
    log:
        R + "/logs/video/f{frames}/{scene}.log",
    benchmark:
        BENCH + "/video/f{frames}/{scene}.tsv"
    resources:
        gpu=TASK.depth_gpus,  # depth model for real clips
    shell:
        "{TRAJBENCH} prepare-video --suite {SUITE.path:q} --scene {wildcards.scene} "
        "--scene-dir {R:q}/scenes/{wildcards.scene} --frames {wildcards.frames} "
        "--out \"$(dirname {output.camera:q})\" > {log:q} 2>&1"


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
    """Edit tasks: the scene's edited first frame and the edit's recipe (real clips: the
    fetched edited frame, cropped like the clip)."""
    input:
        rules.scene.output,
        edited=TASK.edited_source,
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


rule camera:
    """Parametric camera path from the scene's view, scaled by its median depth (video
    tasks: applied on top of the input video's cameras)."""
    input:
        rules.scene.output,
        video=TASK.video_input,
    output:
        R + "/cameras/f{frames}/{scene}/{camera}.json",
    log:
        R + "/logs/camera/f{frames}/{scene}/{camera}.log",
    benchmark:
        BENCH + "/camera/f{frames}/{scene}/{camera}.tsv"
    params:
        video=TASK.video_arg,
    shell:
        "{TRAJBENCH} make-camera --scene-dir {R:q}/scenes/{wildcards.scene} "
        "--camera {wildcards.camera:q} --frames {wildcards.frames} {params.video} "
        "--out {output:q} > {log:q} 2>&1"
