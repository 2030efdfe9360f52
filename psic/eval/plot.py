"""The rate-distortion plot of ``psic eval rd --plot``: PSIC's ladder against the baselines."""

from __future__ import annotations

import io
import textwrap


def rd_plot_png(report: dict, title: str) -> bytes:
    """PNG bytes of PSNR against bpp: PSIC full and protected, and each baseline's average curve."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from psic.errors import UsageError

        raise UsageError("the RD plot needs matplotlib (pip install 'psic[train]')") from None
    figure, axes = plt.subplots(figsize=(6.4, 4.8), dpi=110)
    styles = {"full": ("PSIC full", "o-"), "protected": ("PSIC protected", "o--")}
    for mode, curve in report["psic_curves"].items():
        label, style = styles[mode]
        axes.plot(*zip(*sorted(curve)), style, label=label, linewidth=2)
    for codec, curve in report["curves"].items():
        axes.plot(*zip(*sorted(curve)), ".-", label=codec.replace("WEBP", "WebP"), alpha=0.8)
    rates = [bpp for curve in report["psic_curves"].values() for bpp, _ in curve]
    axes.set_xlim(0, max(rates) * 1.3)
    axes.set_xlabel("bits per pixel")
    axes.set_ylabel("PSNR (dB, RGB)")
    axes.set_title(textwrap.fill(title, 60), fontsize=10)  # a long model or folder path wraps, not clips
    axes.grid(True, alpha=0.3)
    axes.legend()
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()
