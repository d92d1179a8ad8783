"""report.html, the compile page for people: rendered from a real compile, checked in headless Chromium
(DOM and screenshot), and robust to reports that lack optional sections."""
from __future__ import annotations

import base64
import dataclasses
import io
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from conftest import write_tiny_model
from neurocomp.backends import get_backend
from neurocomp.data import load_split
from neurocomp.ir import load_network
from neurocomp.ir.encodings import encode
from neurocomp.report.compile_page import COLOURS, render_compile_html, spike_comparison, weight_pairs


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed; .ci/run installs Debian's chromium (apt-get install chromium)")
        pytest.skip("chromium not installed (apt-get install chromium); this test renders report.html headless")
    return exe


def _chromium_args(exe: str, profile: Path) -> list:
    return [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}"]


class _Tags(HTMLParser):
    """Every start tag with its attributes."""

    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(page: str) -> list:
    p = _Tags()
    p.feed(page)
    return p.tags


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory):
    """A real compile of a tiny torch model on cpu (report.json, both networks), plus the float and cpu
    targets' recorded runs on 6 held-out digits for the spike section."""
    from neurocomp.pipeline.compile import compile_model
    tmp = tmp_path_factory.mktemp("compile_page")
    model = write_tiny_model(tmp / "model", gain=3.0)
    out = tmp / "build"
    compile_model(model / "model.yaml", target="cpu", out=out)
    report = json.loads((out / "report.json").read_text())
    float_net, fixed_net = load_network(out / "network_float.npz"), load_network(out / "network.npz")
    split = load_split("digits", 100)
    spikes = encode(split.x_test[:6], float_net.input.encoding, report["timesteps"], seed=5)
    from neurocomp.ir.schedule import Schedule
    schedule = Schedule.from_dict(report["schedule"])
    float_res = get_backend("float").run(float_net, spikes, schedule, record=True)
    cpu_res = get_backend("cpu").run(fixed_net, spikes, schedule, record=True)
    return {"out": out, "report": report, "float": float_net, "fixed": fixed_net,
            "float_res": float_res, "cpu_res": cpu_res}


def test_compile_writes_the_page_beside_report_json(tiny_build):
    page = (tiny_build["out"] / "report.html").read_text()
    for row in tiny_build["report"]["layers"]:
        assert f"data-layer='{row['name']}'" in page
    assert "<div class='section-error'" not in page


def test_spike_comparison_finds_the_first_divergence(tiny_build):
    """The earliest sample wins, then the earliest stream step (window step + depth), then the layer
    upstream; identical runs give None."""
    net, cpu = tiny_build["fixed"], tiny_build["cpu_res"]
    same = spike_comparison(cpu, cpu, net)
    assert same["first_divergence"] is None
    assert [lay["name"] for lay in same["layers"]] == ["lif1", "lif3"]
    assert same["layers"][0]["float"] == same["layers"][0]["cpu"]
    assert same["layers"][0]["float"] == list(cpu.counts["lif1"].mean(axis=0))
    depths = net.depths()
    assert depths["lif3"] == depths["lif1"] + 1

    def flipped(*where):
        spikes = {k: v.copy() for k, v in cpu.spikes.items()}
        for layer, sample, step, neuron in where:
            spikes[layer][sample, step, neuron] ^= True
        return dataclasses.replace(cpu, spikes=spikes)

    # lif1 at window step 3 is stream step 4; lif3 at window step 2 is stream step 4 too: upstream first
    d = spike_comparison(cpu, flipped(("lif3", 2, 2, 7), ("lif1", 2, 3, 9)), net)["first_divergence"]
    assert d == {"layer": "lif1", "step": 3, "sample": 2, "neuron": 9}
    # lif3 at window step 1 (stream step 3) comes before lif1 at window step 3 (stream step 4)
    d = spike_comparison(cpu, flipped(("lif3", 2, 1, 4), ("lif1", 2, 3, 9), ("lif1", 2, 3, 2)), net)["first_divergence"]
    assert d == {"layer": "lif3", "step": 1, "sample": 2, "neuron": 4}
    # an earlier sample beats any step of a later one
    d = spike_comparison(cpu, flipped(("lif3", 2, 0, 0), ("lif3", 1, 7, 5)), net)["first_divergence"]
    assert d == {"layer": "lif3", "step": 7, "sample": 1, "neuron": 5}


def test_weight_pairs_are_the_quantised_floats(tiny_build):
    """The after-quantisation histogram shows int * 2**exp / S with S from the report, within half a step."""
    pairs = weight_pairs(tiny_build["report"], tiny_build["float"], tiny_build["fixed"])
    assert [p["projection"] for p in pairs] == [p.name for p in tiny_build["float"].projections]
    for p in pairs:
        syn = tiny_build["fixed"].projection(p["projection"]).synapse
        assert p["lsb"] == pytest.approx(2.0 ** (syn.weight_exp + 1) / p["scale"])   # mixed sign: 7-bit steps
        assert np.abs(p["fixed"] - p["float"]).max() <= p["lsb"] / 2 * (1 + 1e-9)
        assert not np.array_equal(p["fixed"], p["float"])


def test_compile_page_renders_in_headless_chromium(tiny_build, tmp_path):
    from PIL import Image
    exe = _chromium()
    report = dict(tiny_build["report"])
    report["spikes"] = spike_comparison(tiny_build["float_res"], tiny_build["cpu_res"], tiny_build["float"])
    page_text = render_compile_html(report, tiny_build["float"], tiny_build["fixed"])
    page = tmp_path / "report.html"
    page.write_text(page_text)

    # self-contained: nothing but inline data is referenced, no URL anywhere in the page
    for tag, attrs in _tags(page_text):
        for key in ("src", "href"):
            if key in attrs:
                assert attrs[key].startswith("data:"), f"<{tag} {key}={attrs[key][:60]!r}> is not inline"
    assert not re.search(r"https?:|url\(|@import", page_text)

    dom = subprocess.run(_chromium_args(exe, tmp_path / "p1") + ["--dump-dom", page.as_uri()],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    assert "<div class=\"section-error\"" not in dom and "section-error\" data-section" not in dom
    # the layer table: one row per population with its exact scale and its integer threshold
    layers_table = dom[dom.index('id="layers"'):]
    layers_table = layers_table[:layers_table.index("</table>")]
    for row in report["layers"]:
        assert f'data-layer="{row["name"]}"' in layers_table
        assert f'data-value="{float(row["scale"])!r}"' in layers_table
        assert f'data-value="{float(row["vth"])!r}"' in layers_table
    # accuracy and agreement read back
    acc = report["accuracy"]
    assert f'data-value="{float(acc["cpu"])!r}"' in dom and f'data-value="{float(acc["float"])!r}"' in dom
    assert 'data-check="identical_spike_trains"' in dom
    # every figure is an inline PNG that decodes
    imgs = [attrs for tag, attrs in _tags(dom) if tag == "img"]
    assert len(imgs) == 3
    for attrs in imgs:
        src = attrs["src"]
        assert src.startswith("data:image/png;base64,")
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        w, h = Image.open(io.BytesIO(data)).size
        assert w > 300 and h > 100
    for fig in ("fig-weights", "fig-headroom", "fig-spikes"):
        assert f'id="{fig}"' in dom
    # the spike section: where float and fixed first diverge, or that they never do
    d = report["spikes"]["first_divergence"]
    if d is None:
        assert "never diverge" in dom
    else:
        assert f'data-layer="{d["layer"]}" data-step="{d["step"]}" data-sample="{d["sample"]}"' in dom

    shot = tmp_path / "shot.png"
    subprocess.run(_chromium_args(exe, tmp_path / "p2") + [f"--screenshot={shot}", "--window-size=1200,3000",
                                                           page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert img.shape[:2] == (3000, 1200)
    assert img.std() > 20, "screenshot is blank"

    def pixels_of(hex_colour: str, tol: int = 8) -> int:
        rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
        return int((np.abs(img - rgb).max(axis=2) <= tol).sum())

    assert pixels_of(COLOURS["headroom_ok"]) > 2000, "no headroom bars in the screenshot"
    assert pixels_of(COLOURS["fixed"]) > 300, "no quantised-weight histogram outline in the screenshot"
    assert pixels_of(COLOURS["float"]) > 1000, "no accuracy bars in the screenshot"


def test_page_degrades_without_optional_sections(tiny_build):
    """Missing or None keys give a short note per section, never an error box."""
    base = tiny_build["report"]
    minimal = {"model": "m", "target": "loihi2", "layers": base["layers"]}
    page = render_compile_html(minimal, None, None)
    assert "<div class='section-error'" not in page
    for note in ("No accuracy in this report.", "No target-vs-cpu agreement", "no weight histograms",
                 "No spike comparison recorded", "No core mapping for this target.", "No timing in this report.",
                 "schedule not recorded"):
        assert note in page
    assert page.count("<img") == 1   # headroom only

    partial = dict(base, mapping={"error": "layer 'lif1' needs 9000 neurons per core"},
                   accuracy=dict(base["accuracy"], target=None, cpu=None),
                   agreement=None, spikes={"layers": [], "first_divergence": None}, learning=None)
    page = render_compile_html(partial, tiny_build["float"], tiny_build["fixed"])
    assert "<div class='section-error'" not in page
    assert "Does not fit: layer &#x27;lif1&#x27; needs 9000 neurons per core" in page
    assert "never diverge" in page and "No per-layer spike counts recorded." in page
    assert "not measured in this compile" in page

    # a section that breaks shows its error on the page instead of raising
    broken = dict(base, layers=[{"name": "x", "uv_headroom_bits": "not a number"}])
    page = render_compile_html(broken, None, None)
    assert "<div class='section-error' data-section='headroom'>" in page


@pytest.mark.slow
def test_page_of_a_plastic_compile(tmp_path):
    """A stream compile that learns (small Diehl & Cook, Brian2 reference): the rules table has a column
    per plastic projection, the histograms say the integers are the learned weights, and their step is
    the rule's weight step."""
    from conftest import write_small_diehl_cook
    from neurocomp.pipeline.compile import compile_model
    out = tmp_path / "build"
    compile_model(write_small_diehl_cook(tmp_path / "model"), target="cpu", out=out)
    report = json.loads((out / "report.json").read_text())
    float_net, fixed_net = load_network(out / "network_float.npz"), load_network(out / "network.npz")
    page = render_compile_html(report, float_net, fixed_net)
    assert "<div class='section-error'" not in page
    assert report["schedule"]["kind"] == "stream" and "stream: one continuous run" in page
    rules = {r["projection"]: r for r in report["rules"]}
    for name in rules:
        assert f"<th data-projection='{name}'>" in page
    assert "id='learning'" in page and "Brian2 (float)" in page
    pairs = {p["projection"]: p for p in weight_pairs(report, float_net, fixed_net)}
    plastic = [n for n, p in pairs.items() if p["plastic"]]
    assert sorted(plastic) == sorted(rules)
    assert f"Plastic projections ({', '.join(plastic)}): the fixed network holds the weights learned" in page
    for name in plastic:
        assert pairs[name]["lsb"] == pytest.approx(rules[name]["weight_lsb"], rel=1e-12)
        levels = pairs[name]["fixed"] / pairs[name]["lsb"]
        assert np.allclose(levels, np.rint(levels))
    assert not np.allclose(pairs["input_exc"]["fixed"], pairs["input_exc"]["float"])  # it learned
