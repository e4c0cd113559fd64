"""The `bdv2` command: a click group wiring the rooms together. No logic lives here.

Each room's commands are imported only when asked for (``_Rooms._lazy``): the data and trainer rooms
import numpy, and the doctor must work (and import nothing heavy) even where numpy itself is what is
broken. Importing this module imports neither jax, TensorFlow nor numpy (tests/doctor/test_cli.py checks it).
"""

from __future__ import annotations

import importlib
from typing import ClassVar

import click

from bdv2 import __version__


class _Rooms(click.Group):
    """A click group whose commands live in the rooms and are imported on first use."""

    _lazy: ClassVar[dict[str, tuple[str, str]]] = {
        "doctor": ("bdv2.doctor.cli", "doctor"),
        "run": ("bdv2.doctor.cli", "run"),
        "matrix": ("bdv2.doctor.matrix.cli", "matrix"),
        "data": ("bdv2.data_tools.cli", "data"),
        "train": ("bdv2.trainer.cli", "train"),
        "demo": ("bdv2.trainer.cli", "demo"),
        "checkpoint": ("bdv2.trainer.checkpoint_cli", "checkpoint"),
        "eval": ("bdv2.trainer.eval_cli", "eval_run"),
        "plot": ("bdv2.trainer.cli", "plot"),
        "serve": ("bdv2.trainer.serve_cli", "serve"),
        "policy": ("bdv2.trainer.serve_cli", "policy"),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self._lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self._lazy:
            module, attr = self._lazy[cmd_name]
            cmd: click.Command = getattr(importlib.import_module(module), attr)
            return cmd
        return super().get_command(ctx, cmd_name)


@click.group(cls=_Rooms, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bdv2")
def main() -> None:
    """bdv2: diagnose and repair JAX/TF/CUDA stacks, convert BridgeData V2, train policies."""


if __name__ == "__main__":
    main()
