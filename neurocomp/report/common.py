"""Small helpers shared by the HTML pages and text summaries: SI / number formatting, matplotlib
(Agg) figures inlined as base64 PNG, table cells that carry their exact value in ``data-value``
(so tests and scripts can read a rendered DOM back), and the pages' common style sheet."""
from __future__ import annotations

import base64
import html
import io
from typing import Optional

#: what each energy component is called in pages and summaries
COMPONENT_LABELS = {
    "synops": "synaptic ops",
    "neuron_updates_active": "neuron updates (active)",
    "neuron_updates_inactive": "neuron updates (inactive)",
    "spike_messages": "spike messages + hops",
    "learning": "learning updates",
    "static": "static power x time",
}

_SI = [(1e0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p"), (1e-15, "f")]


def fmt_si(value: Optional[float], unit: str = "J", digits: int = 3) -> str:
    """``7.37e-06, 'J'`` -> ``'7.37 µJ'``; ``None`` -> ``'–'``."""
    if value is None:
        return "–"
    v = float(value)
    if v == 0:
        return f"0 {unit}"
    for scale, prefix in _SI:
        if abs(v) >= scale:
            return f"{v / scale:.{digits}g} {prefix}{unit}"
    return f"{v:.{digits}g} {unit}"


def fmt_num(value: Optional[float], digits: int = 4) -> str:
    if value is None:
        return "–"
    v = float(value)
    if v != 0 and (abs(v) >= 1e6 or abs(v) < 1e-3):
        return f"{v:.{digits - 1}e}"
    return f"{v:,.{digits}g}" if abs(v) < 1e4 else f"{v:,.0f}"


def png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def plt():
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt



def td(value, text: Optional[str] = None, cls: str = "num") -> str:
    dv = "" if value is None or isinstance(value, str) else f' data-value="{float(value)!r}"'
    return f'<td class="{cls}"{dv}>{html.escape(text if text is not None else str(value))}</td>'


def img(b64: str, alt: str, fig_id: str) -> str:
    return f'<figure id="{fig_id}"><img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}"></figure>'


CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px auto;max-width:1140px;color:#222}
h1{font-size:24px;margin-bottom:4px} h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0;font-size:13px} th,td{border:1px solid #ddd;padding:4px 8px}
th{background:#f4f4f4;text-align:left} td.num{text-align:right;font-variant-numeric:tabular-nums}
td.src{font-size:12px;color:#444;max-width:640px} figure{margin:8px 0} img{max-width:100%}
.note{color:#555;font-size:13px} .tag{display:inline-block;padding:1px 6px;border-radius:3px;font-size:12px}
.measured{background:#d4edda} .modelled{background:#fff3cd}
"""
