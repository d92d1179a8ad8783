"""Two-pixel motion direction learned by supervised depression, in plain Brian2, learning on the target.

* ``inp``: the two pixels, a SpikeGeneratorGroup; neurocomp replays the latency-coded samples of
  ``motion.npz`` (``make_data.py``): each pixel spikes once, pixel 0 first when the dot moves left ->
  right (class 0), pixel 1 first when it moves right -> left (class 1), 2-4 steps apart;
* ``out``: two voltage LIF neurons (leak ``tau_m``, no synaptic current), neuron ``j`` answering class
  ``j``, each with a teacher flag ``wrong``;
* ``readout``: both pixels to both neurons, all four weights equal at first, so the untrained neurons
  fire for both directions alike (the two spikes add up above threshold; one alone does not).

Why the order can be learned with weights alone: the second spike lands on what is left of the first,
so a neuron's peak is ``w_first * q + w_second`` (``q = exp(-lag / tau_m)``): larger when the *stronger*
pixel comes second. The rule ``w = clip(w - apre * wrong_post, 0, wmax)`` takes ``apre`` off a wrong
neuron's weights when it fires — most from the pixel that spiked last (its trace is fresh), least from
the one that spiked first. Neuron 0 fires wrongly on right -> left samples, whose last pixel is 0: it
loses pixel 0 faster and ends up preferring 0-then-1, left -> right; neuron 1 mirrors it. Depression
stops once a neuron no longer fires for the other direction.
"""
from brian2 import NeuronGroup, SpikeGeneratorGroup, Synapses, defaultclock, ms, mV

tau_m = 8 * ms           # membrane leak: what is left of the first spike when the second arrives
v_rest = 0 * mV
v_thresh = 10 * mV
wmax = 12 * mV           # weights in [0, wmax], 8-bit steps of wmax / 255 on the chip
w_init = 10.5 * mV       # one spike alone stays below threshold, two within a few ms cross it
taupre = 2 * ms          # pre trace: fresh for the last pixel, decayed for the first
Apre = 0.2 * mV          # depression per unit of pre trace at each wrong post spike


def build(n_classes=2):
    defaultclock.dt = 1 * ms
    inp = SpikeGeneratorGroup(2, [], [] * ms, name="inp")
    out = NeuronGroup(n_classes, """dv/dt = (v_rest - v)/tau_m : volt
                                    wrong : 1""",
                      threshold="v > v_thresh", reset="v = v_rest", method="exact", name="out")
    out.v = v_rest
    readout = Synapses(inp, out, """w : volt
                                    dapre/dt = -apre/taupre : volt (event-driven)""",
                       on_pre="""v_post += w
                                 apre += Apre""",
                       on_post="w = clip(w - apre * wrong_post, 0*mV, wmax)", name="readout")
    readout.connect()
    readout.w = w_init
    return [inp, out, readout]
