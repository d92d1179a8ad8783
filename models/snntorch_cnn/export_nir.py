"""Write model.nir from the trained snnTorch conv net, with nir's API in snnTorch's export conventions.

    python models/snntorch_cnn/export_nir.py        # writes models/snntorch_cnn/model.nir

snnTorch's own ``export_to_nir`` traces a per-step module; this net's ``forward`` loops over time, and
the exporter's scalar-parameter LIF nodes fail nir 1.0.8's type check anyway (see
models/snntorch_mlp/export_nir.py). So the graph is built node by node exactly as snnTorch 1.0.0's
exporter would write each module (``snntorch/export_nir.py``): ``nn.Conv2d`` -> ``Conv2d`` (bias zeros),
``nn.Linear`` -> ``Linear``, ``nn.Flatten`` -> ``Flatten``, ``snn.Leaky`` -> ``LIF`` with dt = 1e-4,
``tau = dt / (1 - beta)``, ``r = tau / dt``, ``v_leak = 0``, ``v_reset = 0``, per-neuron arrays.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from net import build  # noqa: E402

DT = 1e-4


def leaky(mod, shape):
    beta = float(mod.beta.detach())
    tau = DT / (1 - beta)
    import nir
    full = lambda v: np.full(shape, v, dtype=np.float64)  # noqa: E731
    return nir.LIF(tau=full(tau), r=full(tau / DT), v_leak=full(0.0),
                   v_threshold=full(float(mod.threshold.detach())), v_reset=full(0.0))


def conv(mod, hw):
    import nir
    return nir.Conv2d(input_shape=hw, weight=mod.weight.detach().double().numpy(), stride=mod.stride,
                      padding=mod.padding, dilation=mod.dilation, groups=mod.groups,
                      bias=np.zeros(mod.out_channels))


def main(out: Path = HERE / "model.nir"):
    import nir
    net = build()
    net.load_state_dict(torch.load(HERE / "weights.pt", weights_only=True))
    net.eval()
    graph = nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([1, 28, 28])),
        "conv1": conv(net.conv1, (28, 28)),
        "lif1": leaky(net.lif1, (8, 12, 12)),
        "conv2": conv(net.conv2, (12, 12)),
        "lif2": leaky(net.lif2, (16, 4, 4)),
        "flatten": nir.Flatten(input_type={"input": np.array([16, 4, 4])}, start_dim=0, end_dim=-1),
        "fc": nir.Linear(weight=net.fc.weight.detach().double().numpy()),
        "lif3": leaky(net.lif3, (10,)),
        "output": nir.Output(output_type=np.array([10])),
    }, edges=[("input", "conv1"), ("conv1", "lif1"), ("lif1", "conv2"), ("conv2", "lif2"), ("lif2", "flatten"),
              ("flatten", "fc"), ("fc", "lif3"), ("lif3", "output")])
    nir.write(out, graph)
    nir.read(out)          # type-checks
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*(Path(a) for a in sys.argv[1:]))
