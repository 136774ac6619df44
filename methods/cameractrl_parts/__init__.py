r"""CameraCtrl-SVD (He et al. 2024) rebuilt natively on diffusers' SVD: the parts the
``cameractrl`` adapter assembles (:mod:`methods.cameractrl_model` re-exports them all).

Upstream: github.com/hehao13/CameraCtrl, branch ``svd``, commit
1f9d8baeff66f6c60bb9848dfafcc667b3a22a28. This module is our own implementation of what that
code does; it reproduces the state-dict layout of the released checkpoints
(``hehao13/CameraCtrl_SVD_ckpts``: ``CameraCtrl_svd.ckpt`` for SVD, 14 frames;
``CameraCtrl_svdxt.ckpt`` for SVD-XT, 25 frames), each a dict with
``pose_encoder_state_dict`` and ``attention_processor_state_dict``.

- :class:`CameraPoseEncoder` (upstream ``cameractrl/models/pose_adaptor.py``
  ``CameraPoseEncoder`` with the ``TemporalTransformerBlock`` of ``motion_module.py``):
  Plücker rays ``(B, F, 6, H, W)`` are pixel-unshuffled by 8, ``encoder_conv_in`` (3x3),
  then per level ``nums_rb`` residual blocks, each followed by a temporal self-attention
  transformer block over the frames (sinusoidal position encoding added to the attention
  input, pre-LayerNorm, GEGLU feed-forward). Levels 1.. start with a 2x2 average pool. One
  feature ``(B, C_l, F, H / 8 / 2^l, W / 8 / 2^l)`` per level, ``C = (320, 640, 1280, 1280)``.
- :class:`PoseCondAttnProcessor` (upstream ``attention_processor.py``
  ``PoseAdaptorAttnProcessor`` with ``query_condition = key_value_condition = True``): the
  processor of ``attn1`` of every ``TemporalBasicTransformerBlock`` (upstream
  ``unet.py`` ``set_pose_cond_attn_processor`` with ``add_temporal: true``,
  ``attn_processor_name: attn1``); it replaces the normed hidden states ``x`` that q, k and
  v see by ``qkv_merge(x + pose) * scale + x``, ``qkv_merge`` a zero-initialised linear, so a
  freshly attached processor is an exact no-op. Spatial attention is untouched.
- Which feature reaches which block (upstream ``unet.py`` forward): ``down_blocks.i`` level
  ``i``, ``mid_block`` the last level, ``up_blocks.i`` level ``L - 1 - i``; the feature
  ``(B, C, F, h, w)`` is laid out as the temporal tokens ``(B * h * w, F, C)``.

SVD's UNet forward takes no attention kwargs, so the features reach the processors through
state set on the UNet before the call and cleared after (:func:`pose_features`); the
processors repeat them over the batch, so both CFG halves get the same features (upstream
``pipeline_animation.py``: ``torch.cat([x, x])``). The processors are ``nn.Module`` s
registered as ``attn1.processor``, so the UNet's own ``state_dict`` holds them under exactly
the upstream names; loading still maps every upstream key explicitly
(:func:`load_processor_state_dict`).

Modules: :mod:`.defaults` (checkpoint names, inference settings, encoder sizes; no torch),
:mod:`.encoder` (the pose encoder), :mod:`.processors` (pose-conditioned attention),
:mod:`.checkpoint` (state dicts), :mod:`.pipeline` and :mod:`.tiny` (tiny random models).
This package file imports nothing, so the adapter reads :mod:`.defaults` without torch.
"""
