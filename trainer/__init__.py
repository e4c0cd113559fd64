"""bdv2.trainer: the multi-experiment launcher (`bdv2 train`), the Flax trainer each run's child process
runs, and `bdv2 demo`."""
