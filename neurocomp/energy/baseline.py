"""Latency (and, where a counter is readable, energy) of the conventional baseline measured on this
machine: batch-1 inference of the equivalent network in torch, float32, on the CPU (RAPL package
counter) or a CUDA GPU (NVML energy counter when pynvml is installed).

``layers``: ``[(name, W [n_post, n_pre], bias [n_post])]``; one pass is the equivalent ANN (a
``Linear``/``ReLU`` stack), or with ``parallel=True`` one step of a densely stepped network (every
projection's ``Linear`` on its own slice of one input vector).
"""
from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

class _Parallel:
    """torch: every projection's Linear on its own slice of one input vector (one step of a stream)."""

    def __new__(cls, layers, device="cpu"):
        import torch
        from torch import nn

        class Step(nn.Module):
            def __init__(self):
                super().__init__()
                self.lins = nn.ModuleList()
                for _, W, b, *_ in layers:
                    lin = nn.Linear(W.shape[1], W.shape[0])
                    with torch.no_grad():
                        lin.weight.copy_(torch.from_numpy(W))
                        lin.bias.copy_(torch.from_numpy(b))
                    self.lins.append(lin)
                self.sizes = [layer[1].shape[1] for layer in layers]

            def forward(self, x):
                return [lin(part) for lin, part in zip(self.lins, torch.split(x, self.sizes, dim=1))]

        return Step().eval().to(device)


def _torch_model(layers, device="cpu", parallel: bool = False):
    return _Parallel(layers, device) if parallel else _torch_mlp(layers, device)


def _torch_mlp(layers, device="cpu"):
    """The equivalent ANN in torch: Linear layers, and Conv2d (on the unflattened map) where a layer
    is a convolution, ReLU between them."""
    import torch
    from torch import nn
    mods = []
    for i, layer in enumerate(layers):
        _, W, b, *rest = layer
        conv = rest[0] if rest else None
        if conv is not None:
            syn, in_shape = conv
            k = nn.Conv2d(syn.in_channels, syn.out_channels, syn.kernel_size, stride=syn.stride,
                          padding=syn.padding, dilation=syn.dilation, groups=syn.groups)
            with torch.no_grad():
                k.weight.copy_(torch.from_numpy(np.asarray(syn.weight, dtype=np.float32)))
                k.bias.copy_(torch.from_numpy(np.asarray(b, dtype=np.float32).reshape(syn.out_channels, -1)[:, 0]))
            mods += [nn.Unflatten(1, tuple(int(d) for d in in_shape)), k, nn.Flatten()]
        else:
            lin = nn.Linear(W.shape[1], W.shape[0])
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(W))
                lin.bias.copy_(torch.from_numpy(b))
            mods.append(lin)
        if i < len(layers) - 1:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods).eval().to(device)


def _cpu_model_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _rapl_energy_uj() -> Optional[int]:
    p = Path("/sys/class/powercap/intel-rapl:0/energy_uj")
    try:
        return int(p.read_text().strip())
    except (OSError, ValueError):
        return None


def measure_cpu_latency(layers, x: np.ndarray, repeats: int = 300, warmup: int = 30,
                        parallel: bool = False) -> Dict[str, Any]:
    """Median batch-1 latency of the equivalent network in torch on this machine's CPU (float32), and
    package energy per inference when a RAPL counter is readable."""
    import torch
    model = _torch_model(layers, parallel=parallel)
    xt = torch.from_numpy(np.asarray(x, dtype=np.float32).reshape(1, -1))
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(xt)
        e0, t_all = _rapl_energy_uj(), time.perf_counter()
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(xt)
            times.append(time.perf_counter() - t0)
        t_all = time.perf_counter() - t_all
        e1 = _rapl_energy_uj()
    out = {"latency_s": float(np.median(times)), "latency_p95_s": float(np.percentile(times, 95)),
           "repeats": repeats, "threads": torch.get_num_threads(), "cpu": _cpu_model_name(),
           "framework": f"torch {torch.__version__}", "energy_j": None}
    if e0 is not None and e1 is not None and e1 >= e0:
        out["energy_j"] = (e1 - e0) * 1e-6 / repeats
        out["energy_how"] = f"RAPL package counter over {repeats} inferences ({t_all:.3f} s)"
    return out


def _to_cpu(out):
    return [o.cpu() for o in out] if isinstance(out, list) else out.cpu()


def measure_gpu(layers, x: np.ndarray, repeats: int = 300, warmup: int = 30,
                parallel: bool = False) -> Optional[Dict[str, Any]]:
    """Batch-1 latency on a CUDA GPU (and NVML energy when pynvml is installed); ``None`` without a GPU."""
    import torch
    if not torch.cuda.is_available():
        return None
    model = _torch_model(layers, "cuda", parallel)
    xt = torch.from_numpy(np.asarray(x, dtype=np.float32).reshape(1, -1))
    nvml = None
    try:
        import pynvml  # type: ignore
        pynvml.nvmlInit()
        nvml = (pynvml, pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device()))
    except Exception:  # pynvml absent or no energy counter: latency only
        nvml = None
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            _to_cpu(model(xt.to("cuda")))
        torch.cuda.synchronize()
        e0 = nvml[0].nvmlDeviceGetTotalEnergyConsumption(nvml[1]) if nvml else None
        for _ in range(repeats):
            t0 = time.perf_counter()
            _to_cpu(model(xt.to("cuda")))  # includes both copies, as the modelled latency does
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        e1 = nvml[0].nvmlDeviceGetTotalEnergyConsumption(nvml[1]) if nvml else None
    out = {"latency_s": float(np.median(times)), "latency_p95_s": float(np.percentile(times, 95)),
           "repeats": repeats, "gpu": torch.cuda.get_device_name(), "energy_j": None}
    if e0 is not None and e1 is not None and e1 >= e0:
        out["energy_j"] = (e1 - e0) * 1e-3 / repeats  # NVML reports mJ
        out["energy_how"] = f"NVML total energy counter over {repeats} inferences"
    return out

