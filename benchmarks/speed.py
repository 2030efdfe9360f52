"""CPU coding speed of PSIC against CompressAI's plain scale hyperprior (start-up: startup.py).

Measures, on one 768x512 image (``--size``):

* PSIC encode (``psic.codec.coding.compress``) and PSIC decode, protected (beta=1) and
  full (beta=0), each = ``decode_latent`` (entropy decoding with the integer h_s) +
  ``synthesize`` (the CLTG-conditioned g_s);
* CompressAI's ``ScaleHyperprior(N=128, M=192)`` (``bmshj2018-hyperprior`` at that
  size) with its own ``compress`` / ``decompress``.

Both networks get random weights by default (``--weights`` times a trained PSIC file).
Timings are taken round-robin (one of each case per round, after one warm-up round) so
that a change in machine load hits every case alike; medians and minima are reported.

    python benchmarks/speed.py                 # full run (5 repeats)
    python benchmarks/speed.py --quick         # 2 repeats
    python benchmarks/speed.py --image photo.png --json speed.json
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from models import compressai_model, image_of_size, psic_model, summary, synthetic_image, timed
from report import load_average, machine_info, write_json

DECODE_RATIO_TARGET = 1.10


# --- timing -------------------------------------------------------------------------------


def time_codecs(psic_net, cai_net, x, repeats: int) -> tuple[dict, dict]:
    """One warm-up round, then ``repeats`` rounds of every case in turn; returns (times, sizes)."""
    import torch

    from psic.codec import coding

    height, width = x.shape[-2:]
    state: dict = {}

    def psic_encode():
        state["streams"] = coding.compress(psic_net, x)

    def psic_decode(beta: float) -> Callable[[], dict]:
        def run() -> dict:
            t_latent, latent = timed(lambda: coding.decode_latent(psic_net, state["streams"], height, width))
            t_synth, x_hat = timed(lambda: coding.synthesize(psic_net, latent, beta, height, width))
            assert x_hat.shape == x.shape
            return {"decode_latent": t_latent, "synthesize": t_synth}

        return run

    def cai_encode():
        with torch.no_grad():
            state["cai"] = cai_net.compress(x)

    def cai_decode():
        with torch.no_grad():
            out = cai_net.decompress(state["cai"]["strings"], state["cai"]["shape"])
        assert out["x_hat"].shape == x.shape

    with torch.no_grad():  # z symbols for the hyper-synthesis diagnostic (outside the timing)
        z = psic_net.h_a(torch.abs(psic_net.g_a(x)))
        medians = psic_net.entropy_bottleneck.quantiles[:, 0, 1].view(1, -1, 1, 1)
        z_symbols = torch.round(z - medians).to(torch.int32)
        cai_z = cai_net.h_a(torch.abs(cai_net.g_a(x)))
        cai_eb = cai_net.entropy_bottleneck
        cai_z_hat = cai_eb.decompress(cai_eb.compress(cai_z), cai_z.shape[-2:])

    def psic_indexes():
        psic_net.integer_h_s(z_symbols)

    def cai_indexes():
        with torch.no_grad():
            cai_net.gaussian_conditional.build_indexes(cai_net.h_s(cai_z_hat))

    cases = [
        ("psic_encode", psic_encode),
        ("psic_decode_protected", psic_decode(1.0)),
        ("psic_decode_full", psic_decode(0.0)),
        ("compressai_encode", cai_encode),
        ("compressai_decode", cai_decode),
        ("psic_integer_h_s", psic_indexes),
        ("compressai_h_s_indexes", cai_indexes),
    ]
    times: dict[str, list[float]] = {}
    for round_index in range(repeats + 1):  # round 0 is the warm-up
        for name, call in cases:
            elapsed, parts = timed(call)
            if round_index == 0:
                continue
            times.setdefault(name, []).append(elapsed)
            if isinstance(parts, dict):
                for part, value in parts.items():
                    times.setdefault(f"{name}.{part}", []).append(value)
    streams, cai = state["streams"], state["cai"]
    sizes = {
        "psic": {"z": len(streams.z), "y": len(streams.y)},
        "compressai": {"z": len(cai["strings"][1][0]), "y": len(cai["strings"][0][0])},
    }
    return {name: summary(values) for name, values in times.items()}, sizes


# --- report -------------------------------------------------------------------------------


def fmt_ms(value: float) -> str:
    return f"{value:,.1f}"


def print_report(report: dict) -> None:
    m, cfg = report["machine"], report["config"]
    print("## Machine\n")
    print(f"- CPU: {m['cpu_model']} ({m['logical_cores']} logical cores, {m['usable_cores']} usable by this process)")
    print(
        f"- torch {m['torch']} with {m['torch_threads']} intra-op threads; compressai {m['compressai']}; "
        f"psic {m['psic']}; Python {m['python']}"
    )
    print(f"- load average (1/5/15 min) at start: {m['load_average_1_5_15']}; at end: {report['load_average_end']}")
    print(
        "- Other processes on the machine slow every figure below; compare cases within one run, "
        "and rerun on an idle machine for absolute numbers."
    )
    load1 = float(m["load_average_1_5_15"].split()[0]) if m["load_average_1_5_15"] != "n/a" else 0.0
    if m["torch_threads"] > 1 and load1 + m["torch_threads"] > m["usable_cores"] + 0.5:
        print(
            f"- WARNING: the machine was already loaded (1-min load {load1:.2f} on {m['usable_cores']} cores) and "
            f"torch runs {m['torch_threads']} threads: OpenMP workers then wait on busy cores at every op, which "
            "slows code made of many small ops (CompressAI's build_indexes loop, the h_s) far more than large "
            "convolutions, so the ratios are distorted. Compare with --threads 1, or run on an idle machine."
        )
    print()
    print("## Setup\n")
    print(f"- image: {cfg['image']} ({cfg['width']}x{cfg['height']})")
    print(
        f"- PSIC: {cfg['psic_weights']}; CompressAI: ScaleHyperprior(N={cfg['N']}, M={cfg['M']}), "
        "random weights, update(force=True)"
    )
    print(f"- {cfg['repeats']} timed rounds after 1 warm-up round, cases interleaved round-robin")
    if cfg["random_weights"]:
        print(
            "- NOTE: random weights give latents and bitstreams unlike a trained model's (small, and "
            "without its structure), so entropy-coding time is underrepresented; time a trained model "
            "with --weights for realistic encode/decode figures."
        )
    else:
        print(
            "- NOTE: CompressAI keeps random weights (its y string is nearly empty), so the ratios charge "
            "PSIC's real y entropy coding against almost none on the CompressAI side."
        )
    print()
    t = report["times_ms"]
    sizes = report["bytes"]
    pixels = cfg["width"] * cfg["height"]

    def bpp(codec: str) -> str:
        z, y = sizes[codec]["z"], sizes[codec]["y"]
        return f"z {z:,} B + y {y:,} B ({(z + y) * 8 / pixels:.4f} bpp)"

    print("## Coding time (ms)\n")
    print("| case | median | min | max | stream |")
    print("|---|---:|---:|---:|---|")
    rows = [
        ("PSIC encode (compress)", "psic_encode", bpp("psic")),
        ("PSIC decode, protected (beta=1)", "psic_decode_protected", ""),
        ("  decode_latent", "psic_decode_protected.decode_latent", ""),
        ("  synthesize", "psic_decode_protected.synthesize", ""),
        ("PSIC decode, full (beta=0)", "psic_decode_full", ""),
        ("  decode_latent", "psic_decode_full.decode_latent", ""),
        ("  synthesize", "psic_decode_full.synthesize", ""),
        ("CompressAI encode (compress)", "compressai_encode", bpp("compressai")),
        ("CompressAI decode (decompress)", "compressai_decode", ""),
        ("(part) PSIC integer h_s -> indexes", "psic_integer_h_s", "in encode and decode_latent"),
        ("(part) CompressAI float h_s -> indexes", "compressai_h_s_indexes", "in compress and decompress"),
    ]
    for label, key, extra in rows:
        s = t[key]
        print(f"| {label} | {fmt_ms(s['median'])} | {fmt_ms(s['min'])} | {fmt_ms(s['max'])} | {extra} |")
    print()
    print("## Ratios (PSIC / CompressAI backbone, from medians; min-based in brackets)\n")
    print("| ratio | value | target |")
    print("|---|---:|---|")
    r = report["ratios"]
    for label, key, target in [
        ("decode, protected", "decode_protected", f"<= {DECODE_RATIO_TARGET:.2f}"),
        ("decode, full", "decode_full", f"<= {DECODE_RATIO_TARGET:.2f}"),
        ("encode", "encode", "(none)"),
    ]:
        verdict = ""
        if key.startswith("decode"):
            verdict = " (met)" if r[key]["median"] <= DECODE_RATIO_TARGET else " (missed)"
        print(f"| {label} | {r[key]['median']:.3f} [{r[key]['min']:.3f}] | {target}{verdict} |")
    print()


def ratio(numerator: dict, denominator: dict) -> dict:
    return {"median": numerator["median"] / denominator["median"], "min": numerator["min"] / denominator["min"]}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--image",
        help="image to code (scaled to cover --size and centre-cropped); "
        "default: a synthetic smooth image with texture",
    )
    parser.add_argument("--size", default="768x512", help="WIDTHxHEIGHT of the coded image (default 768x512)")
    parser.add_argument("--weights", help="trained PSIC weights file to time instead of random weights")
    parser.add_argument("--repeats", type=int, help="timed rounds after the warm-up (default 5; 2 with --quick)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    parser.add_argument("--quick", action="store_true", help="a short run: 2 repeats")
    parser.add_argument("--json", metavar="OUT", help="also write every measurement to this JSON file")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 2 if args.quick else 5
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        parser.error(f"--size must look like 768x512, got {args.size!r}")
    if width % 64 or height % 64 or width < 64 or height < 64:
        parser.error("--size sides must be positive multiples of 64 (the codecs' padding multiple)")
    args.width, args.height = width, height
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    machine = machine_info()

    rgb = image_of_size(args.image, args.width, args.height) if args.image else synthetic_image(args.width, args.height)
    x = torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0).float().div(255.0).contiguous()

    psic_net, _ = psic_model(args.weights, seed=args.seed)
    arch = psic_net.arch
    cai_net = compressai_model(arch.N, arch.M, args.seed)
    print(f"timing {args.repeats} rounds on a {args.width}x{args.height} image ...", file=sys.stderr)
    times, sizes = time_codecs(psic_net, cai_net, x, args.repeats)

    report = {
        "machine": machine,
        "config": {
            "image": args.image or "synthetic (smooth gradients, blobs, stripes, grain)",
            "width": args.width,
            "height": args.height,
            "psic_weights": args.weights or f"random weights, N={arch.N} M={arch.M} cond_hidden={arch.cond_hidden}",
            "random_weights": not args.weights,
            "N": arch.N,
            "M": arch.M,
            "repeats": args.repeats,
            "threads": args.threads,
            "seed": args.seed,
        },
        "times_ms": times,
        "bytes": sizes,
        "ratios": {
            "decode_protected": ratio(times["psic_decode_protected"], times["compressai_decode"]),
            "decode_full": ratio(times["psic_decode_full"], times["compressai_decode"]),
            "encode": ratio(times["psic_encode"], times["compressai_encode"]),
        },
        "targets": {"decode_ratio_max": DECODE_RATIO_TARGET},
    }
    report["load_average_end"] = load_average()

    print_report(report)
    write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
