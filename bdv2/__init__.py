"""bdv2: diagnose JAX/TF/CUDA stacks, convert BridgeData V2, train policies on it."""

__version__ = "0.1.0"
