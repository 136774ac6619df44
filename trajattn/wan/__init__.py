r"""Trajectory attention on a full-3D-attention DiT: Wan 2.1 image-to-video (paper Sec. 5.6).

- :mod:`trajattn.wan.frames`: pixel frames -> latent frames under the VAE's temporal compression.
- :mod:`trajattn.wan.attention`: the trajectory branch on each block's 3-D self-attention.
- :mod:`trajattn.wan.pipeline`: ``WanImageToVideoPipeline`` subclass taking trajectories.
- :mod:`trajattn.wan.weights`: branch weights as safetensors.
- :mod:`trajattn.wan.train`: flow-matching training of the variant's parameters.
- :mod:`trajattn.wan.tiny`: tiny random Wan components for CPU tests.

See docs/trajattn.md for the design (frame mapping, RoPE handling, differences from SVD).
"""
