"""CameraCtrl-SVD on diffusers, under its former module name: everything of
:mod:`methods.cameractrl_parts` (encoder, processors, checkpoint, pipeline, tiny models) in one
namespace. Imports torch and diffusers."""

from __future__ import annotations

from methods.cameractrl_parts.checkpoint import (
    CheckpointMismatchError,
    load_cameractrl_checkpoint,
    load_pose_encoder_state_dict,
    load_processor_state_dict,
    processor_parameters,
    processor_state_dict,
)
from methods.cameractrl_parts.defaults import (
    CAMERACTRL_DEFAULTS,
    CKPT_REPO,
    CKPT_SVD,
    CKPT_SVD_XT,
    DEFAULTS,
    SVD_POSE_ENCODER,
    SVD_XT_POSE_ENCODER,
)
from methods.cameractrl_parts.encoder import CameraPoseEncoder, _PositionTable, sinusoidal_table
from methods.cameractrl_parts.pipeline import CameraCtrlPipeline
from methods.cameractrl_parts.processors import (
    MERGE_NAME,
    PROCESSOR_NAME,
    PoseCondAttnProcessor,
    attach_pose_processors,
    pose_features,
    pose_processors,
)
from methods.cameractrl_parts.tiny import build_tiny_pipeline, tiny_pose_encoder

__all__ = [
    "CAMERACTRL_DEFAULTS", "CKPT_REPO", "CKPT_SVD", "CKPT_SVD_XT", "DEFAULTS", "MERGE_NAME",
    "PROCESSOR_NAME", "SVD_POSE_ENCODER", "SVD_XT_POSE_ENCODER", "CameraCtrlPipeline",
    "CameraPoseEncoder", "CheckpointMismatchError", "PoseCondAttnProcessor", "_PositionTable",
    "attach_pose_processors", "build_tiny_pipeline", "load_cameractrl_checkpoint",
    "load_pose_encoder_state_dict", "load_processor_state_dict", "pose_features",
    "pose_processors", "processor_parameters", "processor_state_dict", "sinusoidal_table",
    "tiny_pose_encoder",
]
