"""Write model.nir from the trained snnTorch MLP with snnTorch's own exporter (``export_to_nir``).

    python models/snntorch_mlp/export_nir.py        # writes models/snntorch_mlp/model.nir

snnTorch 1.0.0's ``export_to_nir`` fails nir 1.0.8's type check on a plain Linear-Leaky MLP: a
scalar ``beta``/``threshold`` becomes a LIF node of shape ``()`` that does not match the Linear's
``[128]`` output. The same exporter works when every Leaky holds per-neuron tensors (the same
numbers, broadcast) and the sample has no batch dimension: that is what this script does, so the
file is snnTorch's own export (dt = 1e-4, tau = dt / (1 - beta), r = tau / dt, v_reset = 0).
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from net import build  # noqa: E402


def per_neuron_twin(net):
    """The same network with every Leaky's beta and threshold as per-neuron tensors, without the
    Dropout (identity at inference; snnTorch's exporter has no NIR node for it)."""
    import snntorch as snn
    layers = []
    width = None
    for mod in net:
        if isinstance(mod, torch.nn.Dropout):
            continue
        if isinstance(mod, torch.nn.Linear):
            width = mod.out_features
        if isinstance(mod, snn.Leaky):
            mod = snn.Leaky(beta=mod.beta.detach().expand(width).clone(),
                            threshold=mod.threshold.detach().expand(width).clone(),
                            reset_mechanism=mod.reset_mechanism, init_hidden=True)
        layers.append(mod)
    return torch.nn.Sequential(*layers)


def main(out: Path = HERE / "model.nir"):
    import nir
    from snntorch.export_nir import export_to_nir
    net = build()
    net.load_state_dict(torch.load(HERE / "weights.pt", weights_only=True))
    net.eval()
    graph = export_to_nir(per_neuron_twin(net), torch.zeros(784))
    nir.write(out, graph)
    nir.read(out)          # type-checks
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*(Path(a) for a in sys.argv[1:]))
