"""``neurocomp`` — the command line. Thin: every command calls the library and formats its answer.

Commands live one per module in this package (``compile``, ``run``, ``verify``, ``energy``, ``hil``,
``targets``); each registers itself on :data:`cli`. User errors (``NeurocompError``) print one line
(at most :data:`~neurocomp.errors.MAX_MESSAGE` characters) and exit 2; running out of memory too.
Ctrl-C (or SIGTERM) stops Lava and every child process and exits 130 (143) with one line
(:mod:`neurocomp.process`); ``-q`` silences everything but errors, the libraries' own chatter included.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import warnings

import click

from neurocomp.errors import EXIT_USER_ERROR, NeurocompError, one_line


@contextlib.contextmanager
def _silenced(quiet: bool):
    """With ``-q``: what libraries print or warn (lava-dl's banner, torch's deprecations, Lava's
    workers, which inherit these streams) goes nowhere; errors are printed after, by the group."""
    if not quiet:
        yield
        return
    sink = open(os.devnull, "w")
    out, err = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = sink
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        sys.stdout, sys.stderr = out, err
        sink.close()


class _Command(click.Command):
    def invoke(self, ctx):
        with _silenced(bool(ctx.params.get("quiet"))):
            return super().invoke(ctx)


class _Group(click.Group):
    command_class = _Command

    def invoke(self, ctx):
        from neurocomp import process

        with process.cli_guard():
            try:
                return super().invoke(ctx)
            except NeurocompError as e:
                click.echo(one_line(f"error: {e}"), err=True)
                ctx.exit(e.exit_code)
            except click.UsageError as e:  # a bad option or argument: one line too, not usage + hint
                where = f"'{e.ctx.command_path} --help'" if e.ctx is not None else "'--help'"
                click.echo(one_line(f"error: {e.format_message()} (see {where})"), err=True)
                ctx.exit(e.exit_code)
            except KeyboardInterrupt:
                process.note_interrupt()
                process.note_handled()
                process.end_children()
                name = signal.Signals(process.exit_code() - 128).name if process.exit_code() > 128 else "SIGINT"
                click.echo(f"interrupted: stopped by {'Ctrl-C' if name == 'SIGINT' else name} "
                           "(every child process ended, earlier outputs unchanged)", err=True)
                ctx.exit(process.exit_code())
            except MemoryError:
                process.end_children()
                click.echo("error: out of memory; lower input.timesteps, dataset.holdout or --samples", err=True)
                ctx.exit(EXIT_USER_ERROR)


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

    Exit codes: 0 ok, 2 bad input (spec, weights, data, target), 1 internal error,
    130 stopped by Ctrl-C.
    """
    # libraries' deprecation chatter is not for our users (set PYTHONWARNINGS to see it); Lava's
    # spawned processes read the variable, forked ones inherit the filter
    if "PYTHONWARNINGS" not in os.environ:
        os.environ["PYTHONWARNINGS"] = "ignore"
        warnings.simplefilter("ignore")


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
    try:
        cli(prog_name="neurocomp")
    finally:
        # on the way out (exit handlers, interpreter shutdown) a late Ctrl-C must not turn a finished
        # command into a KeyboardInterrupt traceback or change its exit code
        signal.signal(signal.SIGINT, signal.SIG_IGN)


_register_commands()


