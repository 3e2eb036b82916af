"""CSV, Markdown and gnuplot output of the LM sweep (columns explained in docs/lm.md)."""
from __future__ import annotations

import csv
import math
import os
import shutil
import statistics
import subprocess
from collections import defaultdict

from quant import METHOD_LABELS

LN2 = math.log(2.0)

RUN_COLUMNS = ["run_id", "method", "bits", "lr", "seed", "impl", "same_as", "steps", "steps_done", "val_loss",
               "val_bits_per_char", "diverged", "nonfinite_step", "first_loss", "final_train_loss", "spikes",
               "clamped", "grad_norm_p50", "grad_norm_p90", "grad_norm_p99", "grad_norm_max",
               "max_distinct_per_row", "seconds", "cpu_seconds"]

SUMMARY_COLUMNS = ["method", "bits", "impl", "best_lr", "best_val_loss", "best_val_std", "best_bits_per_char",
                   "mean_val_loss_over_lrs", "worst_val_loss_over_lrs", "diverged_runs", "runs", "spikes",
                   "grad_norm_p50_best", "grad_norm_p99_best", "grad_norm_max", "no_qat_val_loss", "same_as"]


def _capped(result: dict, cap: float) -> float:
    """Validation loss for averages over the sweep: a diverged run counts as the unigram entropy
    (a model that has lost all context), never as NaN."""
    v = result["val_loss"]
    return cap if result["diverged"] or not math.isfinite(v) else v


def summarize(results: list[dict], cap: float, no_qat: dict) -> list[dict]:
    """One row per method x bits: the best learning rate by the seed-mean validation loss of its
    non-diverged runs, and robustness over the whole learning-rate sweep."""
    cells = defaultdict(list)
    for r in results:
        cells[(r["method"], r["bits"])].append(r)
    rows = []
    for (method, bits), runs in sorted(cells.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        by_lr = defaultdict(list)
        for r in runs:
            by_lr[r["lr"]].append(r)
        lr_mean = {lr: statistics.fmean(_capped(r, cap) for r in rs) for lr, rs in by_lr.items()}
        healthy = {lr: rs for lr, rs in by_lr.items() if not any(r["diverged"] for r in rs)}
        best_lr = min(healthy, key=lambda lr: lr_mean[lr]) if healthy else None
        best = by_lr[best_lr] if best_lr is not None else []
        best_vals = [r["val_loss"] for r in best]
        grid = runs[0]["spec"]["grid"]
        owners = {r["same_as"].split("-b")[0] for r in runs if r.get("same_as")}
        rows.append({
            "method": method, "bits": bits, "impl": "/".join(sorted({r["impl"] for r in runs})),
            "best_lr": best_lr if best_lr is not None else "",
            "best_val_loss": statistics.fmean(best_vals) if best_vals else float("nan"),
            "best_val_std": statistics.stdev(best_vals) if len(best_vals) > 1 else 0.0,
            "best_bits_per_char": statistics.fmean(best_vals) / LN2 if best_vals else float("nan"),
            "mean_val_loss_over_lrs": statistics.fmean(lr_mean.values()),
            "worst_val_loss_over_lrs": max(lr_mean.values()),
            "diverged_runs": sum(r["diverged"] for r in runs), "runs": len(runs),
            "spikes": sum(r["spikes"] for r in runs),
            "grad_norm_p50_best": statistics.median(r["grad_norm_p50"] for r in best) if best else float("nan"),
            "grad_norm_p99_best": statistics.median(r["grad_norm_p99"] for r in best) if best else float("nan"),
            "grad_norm_max": max(r["grad_norm_max"] for r in runs),
            "no_qat_val_loss": no_qat.get((bits, grid), {}).get("val_loss", float("nan")),
            "same_as": ",".join(sorted(owners)),
        })
    return rows


def _fmt(v, digits=4) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.{digits}g}" if abs(v) >= 1e4 or abs(v) < 1e-3 else f"{v:.{digits}f}"
    return str(v)


def write_csv(path: str, columns: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow({c: row.get(c, "") for c in columns})


def write_markdown(path: str, header: dict, summary: list[dict], no_qat: dict, fp: dict, export_rows: list[dict]) -> str:
    lines = [f"# LM QAT sweep ({header['mode']})", ""]
    for key, value in header.items():
        lines.append(f"- {key}: {value}")
    lines += ["", f"Full precision (no QAT): val {fp['val_loss']:.4f} nats/char = {fp['val_loss'] / LN2:.4f} bits/char.",
              "", "## No-QAT baseline (full-precision model rounded to the grid at the initial steps, no training)", "",
              "| bits | grid | impl | val nats/char | val bits/char | max distinct/row |", "|---|---|---|---|---|---|"]
    for (bits, grid), r in sorted(no_qat.items()):
        lines.append(f"| {bits} | {grid} | {r['impl']} | {r['val_loss']:.4f} | {r['val_loss'] / LN2:.4f} | {r['max_distinct_per_row']} |")
    lines += ["", "## After QAT: best learning rate per method x bits (Table 2 analogue) and robustness over the sweep", "",
              "| bits | method | impl | best lr | val nats/char (mean ± sd over seeds) | bits/char | mean over lrs | worst over lrs "
              "| diverged | spikes | grad-norm p50 / p99 (best lr) | grad-norm max | no-QAT |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    lines.append(f"| 32 | {METHOD_LABELS['fp']} | - | - | {_fmt(fp['val_loss'])} | {_fmt(fp['val_loss'] / LN2)} "
                 f"| - | - | - | - | - | - | - |")
    for r in summary:
        label = METHOD_LABELS.get(r["method"], r["method"]) + (f" (= {r['same_as']} runs)" if r["same_as"] else "")
        lines.append(
            f"| {r['bits']} | {label} | {r['impl']} | {_fmt(r['best_lr'])} "
            f"| {_fmt(r['best_val_loss'])} ± {_fmt(r['best_val_std'])} | {_fmt(r['best_bits_per_char'])} "
            f"| {_fmt(r['mean_val_loss_over_lrs'])} | {_fmt(r['worst_val_loss_over_lrs'])} "
            f"| {r['diverged_runs']}/{r['runs']} | {r['spikes']} | {_fmt(r['grad_norm_p50_best'], 3)} / "
            f"{_fmt(r['grad_norm_p99_best'], 3)} | {_fmt(r['grad_norm_max'], 3)} | {_fmt(r['no_qat_val_loss'])} |")
    if export_rows:
        lines += ["", "## Integer export (best 2- and 4-bit models; packed codes + per-row steps, reloaded and evaluated)", "",
                  "| model | status | code bits | packed codes bytes | steps bytes | same weights fp32 bytes | ratio "
                  "| whole model packed / fp32 bytes | val fake-quant | val from packed codes | equal | detail |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for e in export_rows:
            if e["status"] != "ok":
                lines.append(f"| {e['model']} | {e['status']} | - | - | - | {e.get('fp32_bytes') or '-'} | - | - | - | - | - "
                             f"| {e['detail']} |")
                continue
            ratio = e["fp32_bytes"] / (e["packed_bytes"] + e["step_bytes"])
            lines.append(f"| {e['model']} | ok | {','.join(map(str, e['code_bits']))} | {e['packed_bytes']:,} "
                         f"| {e['step_bytes']:,} | {e['fp32_bytes']:,} | {ratio:.1f}x "
                         f"| {e['model_packed_bytes']:,} / {e['model_fp32_bytes']:,} | {e['val_fake_quant']:.6f} "
                         f"({e['val_fake_quant_hex']}) | {e['val_packed']:.6f} ({e['val_packed_hex']}) "
                         f"| {'yes' if e['val_equal'] else 'NO'} | {e['detail']} |")
    text = "\n".join(lines) + "\n"
    with open(path, "w") as f:
        f.write(text)
    return text


def write_plots(out_dir: str, results: list[dict], summary: list[dict], runs_dir: str, cap: float) -> str:
    """Data files and gnuplot scripts; renders SVGs when gnuplot is installed. Returns a status line."""
    methods = sorted({r["method"] for r in results})
    bits_list = sorted({r["bits"] for r in results})
    # Fig. 6 analogue: seed-mean validation loss (diverged runs at the cap) against the learning rate.
    with open(os.path.join(out_dir, "lr_sweep.dat"), "w") as f:
        for method in methods:
            for bits in bits_list:
                rs = [r for r in results if r["method"] == method and r["bits"] == bits]
                if not rs:
                    continue
                f.write(f"# method {method} bits {bits}\n")
                for lr in sorted({r["lr"] for r in rs}):
                    vals = [_capped(r, cap) for r in rs if r["lr"] == lr]
                    f.write(f"{lr:g} {statistics.fmean(vals):.6g} {min(vals):.6g} {max(vals):.6g}\n")
                f.write("\n\n")
    blocks = [(m, b) for m in methods for b in bits_list if any(r["method"] == m and r["bits"] == b for r in results)]
    gp = ["set terminal svg size 1200,420 dynamic background rgb 'white'", "set output 'lr_sweep.svg'",
          f"set multiplot layout 1,{len(bits_list)} title 'Validation loss after QAT vs learning rate (seed mean; diverged = {cap:.2f})'",
          "set logscale x", "set xlabel 'learning rate'", "set ylabel 'val loss (nats/char)'", "set key top left font ',9'", "set grid"]
    for bits in bits_list:
        plots = [f"'lr_sweep.dat' index {i} using 1:2 with linespoints title '{m}'" for i, (m, b) in enumerate(blocks) if b == bits]
        gp += [f"set title '{bits}-bit'", "plot " + ", ".join(plots)]
    gp.append("unset multiplot")
    with open(os.path.join(out_dir, "lr_sweep.gp"), "w") as f:
        f.write("\n".join(gp) + "\n")
    # Fig. 5 analogue: train loss and gradient norm during QAT at each method's best lr (first seed).
    gp = ["set terminal svg size 1200,800 dynamic background rgb 'white'", "set output 'curves.svg'",
          f"set multiplot layout 2,{len(bits_list)} title 'QAT at the best learning rate (seed 0): train loss and gradient norm'",
          "set grid", "set key top right font ',9'", "set xlabel 'step'"]
    for what, col, label in (("loss", 2, "train loss (nats/char)"), ("grad", 3, "global gradient norm")):
        for bits in bits_list:
            plots = []
            for s in summary:
                if s["bits"] != bits or s["best_lr"] == "":
                    continue
                picks = sorted((r for r in results if r["method"] == s["method"] and r["bits"] == bits
                                and r["lr"] == s["best_lr"]), key=lambda r: r["seed"])
                if picks:
                    src = picks[0].get("same_as") or picks[0]["run_id"]
                    plots.append(f"'{os.path.relpath(os.path.join(runs_dir, src, 'curve.dat'), out_dir)}' "
                                 f"using 1:{col} with lines title '{s['method']} lr {s['best_lr']:g}'")
            gp += [f"set title '{bits}-bit {what}'", f"set ylabel '{label}'",
                   "set logscale y" if what == "grad" else "unset logscale y"]
            gp.append("plot " + ", ".join(plots) if plots else "plot 0 notitle")
    gp.append("unset multiplot")
    with open(os.path.join(out_dir, "curves.gp"), "w") as f:
        f.write("\n".join(gp) + "\n")
    gnuplot = shutil.which("gnuplot")
    if gnuplot is None:
        return "gnuplot not found: scripts written, plots not rendered (Debian: gnuplot-nox)"
    for script in ("lr_sweep.gp", "curves.gp"):
        done = subprocess.run([gnuplot, script], cwd=out_dir, capture_output=True, text=True)
        if done.returncode != 0:
            return f"gnuplot {script} failed: {done.stderr.strip()[:300]}"
    return "plots: lr_sweep.svg, curves.svg"
