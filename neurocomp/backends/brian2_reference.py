"""The ``brian2`` reference target: the user's own Brian2 objects, run by Brian2 itself (float).

It runs the *source* model, not our IR: the spec names the script, each run builds the user's
objects afresh (:func:`neurocomp.frontends.brian2.load_brian2`), puts the given network's plastic
weights into them (IR units -> Brian2 units through each Synapses' gain, exactly) and plays the
stream:

* a ``SpikeGeneratorGroup`` input replays the target's exact spikes;
* a ``PoissonGroup`` with constant rates runs at the rates the stream was encoded from
  (:class:`SampleRates`, from the samples' features) with Brian2's own seeded draws — that reference
  agrees in distribution only;
* a supervised-depression teacher (0/1 per step and neuron) is written into the post group's flag
  variable at the start of every step.

Its result is a :class:`~neurocomp.backends.base.Result` like every target's (windows by depth), its
``weights`` the plastic projections' weights after the run, in IR float units.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np

from neurocomp.backends.base import Backend, Capabilities, Result
from neurocomp.errors import FrontendError, NeurocompError
from neurocomp.frontends.brian2 import _b2, load_brian2
from neurocomp.ir import Network, RateEncoding, SupervisedDepression
from neurocomp.ir.schedule import fold_stream, to_stream


REPLAY_CHUNK = 20000  # steps of replayed input per Brian2 run (see Brian2Session.run_stream)
# Runs at least this long use Brian2's cython target where it works: 2.5x its numpy target on the 28x28
# Diehl & Cook (1,489 vs 603 steps/s, measured side by side), worth its one-off compile (~1-2 min, then
# cached in ~/.cython); shorter runs stay on numpy (no compile wait).
CYTHON_MIN_STEPS = 50_000


def cython_problem() -> Optional[str]:
    """Why Brian2's cython target cannot run here (no Cython, no C compiler), or None."""
    import os
    import shutil
    from importlib.util import find_spec

    if find_spec("Cython") is None:
        return "Cython is not installed"
    if not any(shutil.which(c) for c in (os.environ.get("CC", "cc"), "gcc", "clang") if c):
        return "no C compiler (cc) on PATH"
    return None


def reference_codegen(steps: int) -> str:
    """Brian2's code generation target for a reference run of ``steps`` steps (see CYTHON_MIN_STEPS)."""
    return "cython" if steps >= CYTHON_MIN_STEPS and cython_problem() is None else "numpy"


@dataclass(frozen=True)
class SampleRates:
    """The samples a rate-coded stream was drawn from, for a PoissonGroup reference run.

    Sample ``k`` is ``timesteps`` steps at spike probability ``encoding.max_rate * clip(x[k], 0, 1)``
    per step and channel (the probability :func:`neurocomp.ir.encodings.encode` draws with), then
    ``rest`` silent steps. A PoissonGroup fires with probability ``rates * dt`` per step, so Brian2
    runs at ``rates = p / dt``: the same rates as the target's input, Brian2's own random draws (the
    two runs agree in distribution, not spike for spike). ``seed``: Brian2's seed for the run, if set.
    """

    x: np.ndarray
    encoding: object
    timesteps: int
    rest: int
    seed: Optional[int] = None

    @property
    def steps(self) -> int:
        return len(self.x) * (self.timesteps + self.rest)

    def probabilities(self) -> np.ndarray:
        """Spike probability per step ``[samples, n_in]`` while each sample is shown."""
        from neurocomp.ir.encodings import rate_probabilities
        return rate_probabilities(self.x, self.encoding)


def _settable_rates_problem(inp) -> Optional[str]:
    """Why a PoissonGroup's rates cannot be set per sample (a string expression, e.g. a TimedArray), or None."""
    from brian2.core.variables import ArrayVariable

    rates = inp.variables["rates"]
    if isinstance(rates, ArrayVariable):
        return None
    return (f"input {inp.name!r} is a PoissonGroup with rates={getattr(rates, 'expr', rates)!r}: the Brian2 "
            "reference sets the target's per-sample rates, which needs constant rates "
            "(e.g. PoissonGroup(N, rates=0*Hz))")


class Brian2Session:
    """A freshly built Brian2 model of a spec, run stream after stream (state carries over)."""

    def __init__(self, model, codegen: str = "numpy"):
        self.model = model
        self.codegen = codegen       # Brian2's target for this session's runs (falls back to numpy)
        self.fallback: Optional[str] = None
        self._b2net = None
        self._monitors = {}

    def set_weights(self, weights: Dict[str, np.ndarray]) -> None:
        """Write IR-unit weights ``[n_post, n_pre]`` into the plastic Synapses (exact round trip)."""
        for name, w in weights.items():
            m, syn = self.model.synapses[name], self.model.synapse_objects[name]
            i, j = np.asarray(syn.i[:]), np.asarray(syn.j[:])
            syn.variables[m.weight_var].set_value(np.asarray(w)[j, i] / m.gain)   # IR weight = Brian2 weight x gain
        got = self.weights()
        for name, w in weights.items():
            if not np.allclose(got[name], w, rtol=1e-9, atol=1e-12 * max(np.abs(w).max(), 1.0)):
                raise NeurocompError(f"Synapses {name!r}: could not set the weights in Brian2")

    def _network(self):
        b2 = _b2()
        if self._b2net is None:
            self._monitors = {name: b2.SpikeMonitor(g) for name, g in self.model.groups.items()}
            self._b2net = b2.Network(*self.model.objects, *self._monitors.values())
        return self._b2net

    def weights(self) -> Dict[str, np.ndarray]:
        """Current IR-unit weights ``[n_post, n_pre]`` of every plastic projection, read from Brian2."""
        out = {}
        for name, m in self.model.synapses.items():
            if m.plasticity is None:
                continue
            syn = self.model.synapse_objects[name]
            w = np.zeros_like(m.effect)
            w[np.asarray(syn.j[:]), np.asarray(syn.i[:])] = np.asarray(getattr(syn, m.weight_var)[:]) * m.gain
            out[name] = w
        return out

    def _adaptive(self):
        """``(group name, NeuronMap)`` of every NeuronGroup mapped to an ATRLIF with an adaptive threshold."""
        return [(name, m) for name, m in self.model.neurons.items()
                if m.adaptive and m.adaptive.get("variable")]

    def thresholds(self) -> Dict[str, np.ndarray]:
        """Each adaptive group's thresholds in float IR units (``theta0 + theta``, mV for voltages)."""
        return {name: m.adaptive["theta0"] + np.asarray(getattr(self.model.groups[name], m.adaptive["variable"] + "_")[:],
                                                        dtype=np.float64) * m.unit_scale
                for name, m in self._adaptive()}

    def set_thresholds(self, thresholds: Dict[str, np.ndarray]) -> None:
        """Write float IR thresholds (learned ones) into the groups' adaptive threshold variables."""
        for name, m in self._adaptive():
            if name in thresholds:
                setattr(self.model.groups[name], m.adaptive["variable"] + "_",
                        (np.asarray(thresholds[name], dtype=np.float64) - m.adaptive["theta0"]) / m.unit_scale)

    def _freeze_thresholds(self, names):
        """Hold the adaptive thresholds of ``names`` where they are: the reset no longer raises them and,
        where they decay, a NetworkOperation restores them after every state update (before the threshold).
        Returns the undo."""
        b2 = _b2()
        undo, held = [], []
        for name, m in self._adaptive():
            if name not in names:
                continue
            group = self.model.groups[name]
            code = group.event_codes["spike"]
            sink = f" - {m.adaptive['variable']}" if m.adaptive.get("reset_follows_threshold") else ""
            group.event_codes["spike"] = f"{m.v} = {m.v_reset!r}*{'volt' if m.unit == 'mV' else '1'}{sink}"
            undo.append(lambda g=group, c=code: g.event_codes.__setitem__("spike", c))
            if m.adaptive.get("tau_theta") is not None:
                held.append((group, m.adaptive["variable"], np.array(getattr(group, m.adaptive["variable"] + "_")[:])))
        if held:
            def hold(t):
                for group, var, values in held:
                    setattr(group, var + "_", values)
            op = b2.NetworkOperation(hold, dt=self.model.dt * b2.second, when="before_thresholds")
            self._network().add(op)
            undo.append(lambda: self._network().remove(op))
        return undo

    def teacher_flags(self) -> Dict[str, tuple]:
        """``{projection: (post NeuronGroup, flag variable)}`` of every supervised-depression projection."""
        return {name: (self.model.groups[m.target], m.rule_rows["teacher"]) for name, m in self.model.synapses.items()
                if isinstance(m.plasticity, SupervisedDepression)}

    def _teacher_operation(self, teacher: Dict[str, np.ndarray], steps: int, t0_steps: int):
        """A NetworkOperation that writes ``teacher[projection][step]`` into the post group's flag
        variable at the start of each step (before thresholds, so that step's ``on_post`` reads it)."""
        b2 = _b2()
        flags = self.teacher_flags()
        targets = []
        for name, values in teacher.items():
            if name not in flags:
                raise FrontendError(f"teacher for {name!r}: not a supervised-depression Synapses "
                                    f"(have {sorted(flags) or 'none'})")
            group, var = flags[name]
            values = np.asarray(values, dtype=np.float64)
            if values.shape != (steps, len(group)):
                raise FrontendError(f"teacher for {name!r}: shape {values.shape}, expected ({steps}, {len(group)})")
            targets.append((group, var, values))
        last = {}

        def set_flags(t):
            step = int(round(float(np.asarray(t[:])) / self.model.dt)) - t0_steps
            if not 0 <= step < steps:
                return
            for group, var, values in targets:
                row = values[step]
                key = (group.name, var)
                if key not in last or not np.array_equal(last[key], row):  # flags change once per sample
                    setattr(group, var + "_", row)
                    last[key] = row

        return b2.NetworkOperation(set_flags, dt=self.model.dt * b2.second, when="start")

    @property
    def reference_input(self) -> str:
        """How :meth:`run_stream` feeds the input group (said in report.json next to the reference)."""
        if isinstance(self.model.input_group, _b2().SpikeGeneratorGroup):
            return "replayed: the target's spikes"
        return "poisson: Brian2's own draws at the target's rates"

    def _poisson_operation(self, rates: SampleRates, steps: int, t0_steps: int):
        """A NetworkOperation that sets the PoissonGroup's rates at the start of each sample and of
        each rest (0 Hz). One operation over a single ``Network.run``: a run per sample costs ~0.2 s
        of Brian2 set-up each, the per-step Python call about 0.3 ms."""
        b2 = _b2()
        inp, dt = self.model.input_group, self.model.dt
        problem = _settable_rates_problem(inp)
        if problem:
            raise FrontendError(problem)
        if not isinstance(rates.encoding, RateEncoding):
            raise FrontendError(f"input {inp.name!r} is a PoissonGroup and input.encoding is "
                                f"{type(rates.encoding).__name__}: Poisson draws reproduce a rate code only")
        if rates.steps != steps:
            raise FrontendError(f"input rates cover {rates.steps} steps, the stream has {steps}")
        hz = rates.probabilities() / dt    # fires with probability rates * dt per step
        if hz.shape[1] != len(inp):
            raise FrontendError(f"input rates have {hz.shape[1]} channels, {inp.name!r} has {len(inp)}")
        window = rates.timesteps + rates.rest
        shown = [None]                     # the segment whose rates are set: sample k, or -1 at rest

        def set_rates(t):
            step = int(round(float(np.asarray(t[:])) / dt)) - t0_steps
            if not 0 <= step < steps:
                return
            k, r = divmod(step, window)
            segment = k if r < rates.timesteps else -1
            if segment != shown[0]:
                inp.rates_ = hz[k] if segment >= 0 else 0.0
                shown[0] = segment

        return b2.NetworkOperation(set_rates, dt=dt * b2.second, when="start")

    def _run(self, net, duration) -> None:
        """``net.run`` with this session's code generation target; a cython target that fails to compile
        (before any step ran) falls back to numpy for the rest of the session."""
        b2 = _b2()
        b2.prefs.codegen.target = self.codegen
        t = float(net.t)
        try:
            net.run(duration, namespace=self.model.run_ns)
        except Exception as e:      # (not KeyboardInterrupt: a BaseException)
            if self.codegen == "numpy" or float(net.t) != t:
                raise
            why = (str(e).splitlines() or [""])[0][:80]
            self.fallback = f"{self.codegen} failed ({type(e).__name__}: {why}), numpy used"
            self.codegen = "numpy"
            b2.prefs.codegen.target = "numpy"
            net.run(duration, namespace=self.model.run_ns)

    def run_stream(self, spikes_in: np.ndarray, learn: bool = True,
                   teacher: Optional[Dict[str, np.ndarray]] = None,
                   rates: Optional[SampleRates] = None, frozen_thresholds=()) -> dict:
        """Run Brian2 itself on a stream ``[steps, n_in]`` (continuing from its current state).

        A SpikeGeneratorGroup input replays the exact spikes. A PoissonGroup input (constant rates)
        instead runs at ``rates`` (:class:`SampleRates`, the samples the stream was encoded from):
        Brian2 draws its own spikes at the same per-step probabilities (``rates.seed`` seeds it); the
        script's rates are restored afterwards. ``learn=False`` runs the
        plastic Synapses with only their propagation statements. ``teacher[projection]``: ``[steps,
        n_post]`` values of the post group's flag variable of a supervised-depression Synapses (the
        ``wrong`` of ``w - apre * wrong_post``), set at the start of every step; the flags the script
        set are restored afterwards. ``frozen_thresholds``: adaptive groups whose thresholds stay where they
        are for this run (restored afterwards). Returns ``{group: [steps, n] bool}``.
        """
        b2 = _b2()
        inp = self.model.input_group
        poisson = not isinstance(inp, b2.SpikeGeneratorGroup)
        if poisson and rates is None:
            raise FrontendError(f"input {inp.name!r} is a PoissonGroup: Brian2 cannot replay the exact spike "
                                "stream; use a SpikeGeneratorGroup for reference runs")
        net = self._network()
        spikes_in = np.asarray(spikes_in, dtype=bool)
        steps = len(spikes_in)
        t0_steps = int(round(float(net.t) / self.model.dt))
        rate_op = self._poisson_operation(rates, steps, t0_steps) if poisson else None
        chunks = [(0, steps)]
        if not poisson:
            # replayed in chunks of REPLAY_CHUNK steps: Brian2's numpy SpikeGeneratorGroup casts its whole
            # int32 spike-time array to int64 on every step (searchsorted against an int64 step), so one
            # long stream costs steps x spikes; a chunk starting at the current t replays exactly
            k, idx = np.nonzero(spikes_in)
            chunks = [(lo, min(lo + REPLAY_CHUNK, steps)) for lo in range(0, steps, REPLAY_CHUNK)] or [(0, 0)]
            bounds = np.searchsorted(k, [lo for lo, _ in chunks] + [steps])
        saved = {}
        teacher_op, saved_flags = None, []
        if teacher:
            teacher_op = self._teacher_operation(teacher, steps, t0_steps)
            flagged = {(g.name, v): (g, v) for g, v in (self.teacher_flags()[n] for n in teacher)}
            saved_flags = [(g, v, np.array(getattr(g, v + "_")[:])) for g, v in flagged.values()]
            net.add(teacher_op)
        if not learn:
            for name, m in self.model.synapses.items():
                if m.plasticity is not None:
                    syn = self.model.synapse_objects[name]
                    saved[name] = (syn.pre.code, syn.post.code)
                    syn.pre.code = "\n".join(m.propagation)
                    syn.post.code = ""
        if rate_op is not None:
            saved_rates = np.array(inp.rates_[:])
            net.add(rate_op)
            if rates.seed is not None:
                b2.seed(rates.seed)
        undo = self._freeze_thresholds(set(frozen_thresholds))
        try:
            for c, (lo, hi) in enumerate(chunks):
                if not poisson:
                    a, b = bounds[c], bounds[c + 1]
                    inp.set_spikes(idx[a:b], (k[a:b] + t0_steps) * self.model.dt * b2.second)
                self._run(net, (hi - lo) * self.model.dt * b2.second)
        finally:
            b2.prefs.codegen.target = "numpy"
            for u in undo:
                u()
            if rate_op is not None:
                net.remove(rate_op)
                inp.rates_ = saved_rates
            for name, (pre, post) in saved.items():
                syn = self.model.synapse_objects[name]
                syn.pre.code, syn.post.code = pre, post
            if teacher_op is not None:
                net.remove(teacher_op)
                for group, var, values in saved_flags:
                    setattr(group, var + "_", values)
        out = {}
        for name, mon in self._monitors.items():
            t = np.rint(np.asarray(mon.t[:]) / self.model.dt).astype(np.int64) - t0_steps
            i = np.asarray(mon.i[:], dtype=np.int64)
            sel = (t >= 0) & (t < steps)
            trains = np.zeros((steps, len(self.model.groups[name])), dtype=bool)
            trains[t[sel], i[sel]] = True
            out[name] = trains
        return out


class Brian2Reference(Backend):
    """``brian2``: the user's Brian2 objects, float, as Brian2 runs them (the stream schedule)."""

    name = "brian2"
    description = "the user's own Brian2 objects run by Brian2 (float reference for Brian2 sources)"
    capabilities = Capabilities(network="float", batched=False, stream=True, learning=True, reference=True)

    def unavailable(self) -> Optional[str]:
        from importlib.util import find_spec
        return None if find_spec("brian2") else "target brian2 needs the brian2 package (pip install brian2)"

    def accepts(self, source) -> bool:
        return source is not None and getattr(source.spec.source, "kind", None) == "brian2"

    def run(self, net: Network, spikes, schedule, *, record=False, probe=False, learn=False, teacher=None,
            progress=None, source=None) -> Result:
        if not self.accepts(source):
            raise NeurocompError("target brian2 runs Brian2 sources only (source.kind: brian2)")
        self.check(net, schedule)
        spikes = np.asarray(spikes, dtype=bool)
        session = Brian2Session(load_brian2(source.spec),
                                codegen=reference_codegen(len(spikes) * schedule.window))
        sizes = {p.name: p.size for p in session.model.network.populations}
        if sizes != {p.name: p.size for p in net.populations}:
            raise NeurocompError(f"{source.spec.path}: the Brian2 script no longer builds this network "
                                 f"(populations {sizes}); compile again")
        # the plastic Synapses take the given network's weights (learned ones, or the initial ones)
        session.set_weights({name: net.projection(name).synapse.weight for name, m in session.model.synapses.items()
                             if m.plasticity is not None})
        rates = None
        if source.features is not None:
            rates = SampleRates(np.asarray(source.features), net.input.encoding, schedule.timesteps, schedule.rest,
                                seed=source.seed)
        stream = to_stream(spikes, schedule.rest)
        # ATRLIF: thresholds the network carries (learned ones) go in; a network whose adaptation is off
        # (theta_step 0 where the script raises it) runs with them held
        given = {p.name: p.neuron.theta_init for p in net.populations
                 if getattr(p.neuron, "theta_init", None) is not None}
        session.set_thresholds(given)
        frozen = [name for name, m in session._adaptive()
                  if net.population(name).neuron.theta_step == 0 and m.neuron.theta_step > 0]
        trains = session.run_stream(stream, learn=learn, teacher=teacher, rates=rates, frozen_thresholds=frozen)
        depths = net.depths()
        n, W = len(spikes), schedule.window
        windows = {k: fold_stream(v, n, W, depths.get(k, 0)) for k, v in trains.items()}
        return Result(target=self.name, output=net.output, schedule=schedule,
                      counts={k: w.sum(axis=1).astype(np.int64) for k, w in windows.items()},
                      spikes=windows if record else {net.output: windows[net.output]},
                      stream=trains if record else {}, weights=session.weights() if learn else {},
                      details={"reference_input": session.reference_input,
                               "codegen": session.fallback or session.codegen},
                      thresholds=session.thresholds() if learn else {})
