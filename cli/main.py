"""``neurocomp`` — the command line. Thin: every command calls the library and formats its answer.

Commands live one per module in this package (``compile``, ``run``, ``verify``, ``energy``, ``hil``,
``targets``); each registers itself on :data:`cli`. User errors (``NeurocompError``) print one line
and exit 2.
"""
from __future__ import annotations

import os
import sys

import click

from neurocomp.errors import NeurocompError


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except NeurocompError as e:
            click.echo(f"error: {e}", err=True)
            ctx.exit(e.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="neurocomp")
def cli():
    """Deploy trained spiking networks to Loihi fixed point through Lava.

    \b
    Typical session:
      neurocomp compile models/mnist_mlp/model.yaml --target loihi-sim --out build/mnist_mlp
      neurocomp run     build/mnist_mlp --target cpu --samples 1000 --out out/run
      neurocomp verify  build/mnist_mlp
      neurocomp targets

    Exit codes: 0 ok, 2 bad input (spec, weights, data, target), 1 internal error.
    """
    # Lava prints its own warnings per process; keep the terminal for ours
    os.environ.setdefault("PYTHONWARNINGS", "ignore")


def progress_bar(desc: str):
    """A tqdm bar on stderr driven by (done, total) callbacks; silent when stderr is not a terminal."""
    from tqdm import tqdm

    state = {}

    def update(done: int, total: int):
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(total=total, desc=desc, unit="step", file=sys.stderr,
                                      disable=None, leave=False)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()
            state.pop("bar")

    return update


def _register_commands():
    """Import every ``cmd_*`` module in this package; each adds its command to :data:`cli`."""
    import importlib
    import pkgutil

    import neurocomp.cli as pkg
    for mod in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if mod.name.startswith("cmd_"):
            importlib.import_module(f"neurocomp.cli.{mod.name}")


def main():
    cli(prog_name="neurocomp")


_register_commands()


