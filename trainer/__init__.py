"""bdv2.trainer: the multi-experiment launcher and the Flax trainer (not built yet)."""
