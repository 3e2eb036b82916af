#!/usr/bin/python3
"""QAT of a small transformer LM on the King James Bible: StableQAT vs ParetoQ vs DSQ vs STE/LSQ
(and the STE x 0.30 control) at 2/3/4 bits across learning rates (issue 16). docs/lm.md explains
the protocol and every column.

    /usr/bin/python3 examples/lm/lm_demo.py                      # default sweep, --impl library
    /usr/bin/python3 examples/lm/lm_demo.py --quick --impl reference
    /usr/bin/python3 examples/lm/lm_demo.py --single stableqat:2:0.001:0 --resume   # one run

Runs are independent processes of one thread each (--workers at a time); every run is
deterministic and checkpointed, so `--resume` after a kill continues where it stopped.
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import platform
import shutil
import sys
import time
from dataclasses import asdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import data  # noqa: E402
import export  # noqa: E402
import quant  # noqa: E402
import report  # noqa: E402
import train  # noqa: E402
from model import ModelConfig, TransformerLM, count_parameters, evaluate, quantization_targets  # noqa: E402

# Sizes of the two modes. The default sweep was sized for <= 20 minutes on 2 cores (docs/lm.md).
DEFAULT = dict(d_model=128, n_layers=5, n_heads=4, context=128, pretrain_steps=400, pretrain_batch=32,
               pretrain_lr=3e-3, pretrain_warmup=40, qat_steps=80, qat_batch=8, eval_windows=256,
               methods="lsq,paretoq,dsq,stableqat,ste030", bits="2,3,4", lrs="1e-4,4e-4,1.6e-3,6.4e-3",
               seeds="0,1", ckpt_every=20, pretrain_threads=2, workers=2, out="build/lm")
QUICK = dict(d_model=48, n_layers=2, n_heads=2, context=64, pretrain_steps=200, pretrain_batch=16,
             pretrain_lr=3e-3, pretrain_warmup=20, qat_steps=30, qat_batch=8, eval_windows=64,
             methods="lsq,paretoq,dsq,stableqat", bits="2,4", lrs="1e-3", seeds="0", ckpt_every=5,
             pretrain_threads=1, workers=1, out="build/lm-quick")
# --quick checks: the tiny full-precision model must get below this validation loss (nats/char);
# the corpus's unigram entropy (a model without context) is 3.02.
QUICK_FP_BOUND = 2.6


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny model, few steps, one method per family, with checks")
    p.add_argument("--impl", default="library", choices=["library", "reference", "auto"],
                   help="quantizer implementation: the stableqat package (default; fails if unavailable), "
                        "the eager torch transcription of DESIGN.md §1, or the library where it can")
    p.add_argument("--out", help="output directory (default build/lm, build/lm-quick with --quick)")
    p.add_argument("--resume", action="store_true", help="reuse finished runs and continue killed runs from their checkpoints")
    p.add_argument("--single", metavar="METHOD:BITS:LR:SEED", help="train one QAT run (needs the cached fp model)")
    p.add_argument("--save-final", action="store_true", help="also save the final model of each run (final.pt)")
    p.add_argument("--run-dir", help="with --single: the run's directory (default OUT/runs/RUN_ID)")
    p.add_argument("--throttle", type=float, default=0.0,
                   help="with --single: sleep this many seconds after each step (lets the kill test land mid-run; "
                        "no effect on the numbers)")
    for key, value in DEFAULT.items():
        if key == "out":
            continue
        p.add_argument("--" + key.replace("_", "-"), type=type(value), default=None, help=f"default {value} (quick {QUICK[key]})")
    args = p.parse_args(argv)
    base = QUICK if args.quick else DEFAULT
    for key, value in base.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    return args


def parse_list(text: str, kind):
    try:
        return [kind(t) for t in text.split(",") if t.strip()]
    except ValueError as error:
        raise SystemExit(f"bad list {text!r}: {error}")


def log(msg: str) -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------------------------------
# Worker processes: each loads the corpus and the pretrained state once.
# --------------------------------------------------------------------------------------------
_W: dict = {}


def _worker_init(fp_path: str, fp_info: dict, model_cfg: dict) -> None:
    _W["corpus"] = data.load_corpus()
    _W["fp_state"] = torch.load(fp_path)
    _W["fp_info"] = fp_info
    _W["model_cfg"] = ModelConfig(**model_cfg)


def _worker_run(task):
    cfg, run_dir, resume, save_final = task
    try:
        result = train.qat_run(_W["corpus"], _W["fp_state"], _W["fp_info"], _W["model_cfg"], cfg, run_dir,
                               resume, save_final)
        ckpt = os.path.join(run_dir, "ckpt.pt")   # the run is finished: result.json (and final.pt) hold it
        if os.path.exists(ckpt):
            os.remove(ckpt)
        return result
    except Exception as error:
        return {"error": f"{cfg.run_id()}: {type(error).__name__}: {error}"}


# --------------------------------------------------------------------------------------------

def build_runs(args, methods, bits_list, lrs, seeds):
    """Runs to train and aliases: a method whose spec equals an earlier one's at a bit width
    (paretoq = lsq at 3-4 bits) reuses that run's results (column same_as)."""
    runs, aliases, owner = [], [], {}
    for bits in bits_list:
        for method in methods:
            spec = quant.resolve_spec(method, bits)
            for lr in lrs:
                for seed in seeds:
                    cfg = train.RunConfig(method, bits, lr, seed, args.qat_steps, args.qat_batch, args.impl,
                                          args.ckpt_every, args.eval_windows)
                    key = (spec.key(), lr, seed)
                    if key in owner:
                        aliases.append((cfg, owner[key]))
                    else:
                        owner[key] = cfg
                        runs.append(cfg)
    return runs, aliases


def check_library_or_exit(args, methods, bits_list) -> None:
    """--impl library fails before any training when the package cannot run a requested method."""
    if args.impl != "library":
        return
    for bits in bits_list:
        for method in methods:
            try:
                quant.make_quantizer(method, bits, "library")
            except quant.LibraryUnavailable as error:
                raise SystemExit(f"error: {error}")


def main(argv=None) -> int:
    args = parse_args(argv)
    out = os.path.abspath(args.out)
    runs_dir = os.path.join(out, "runs")
    os.makedirs(runs_dir, exist_ok=True)
    methods = parse_list(args.methods, str)
    bits_list = parse_list(args.bits, int)
    lrs = parse_list(args.lrs, float)
    seeds = parse_list(args.seeds, int)
    if args.single:
        try:
            method, bits, lr, seed = args.single.split(":")
            methods, bits_list, lrs, seeds = [method], [int(bits)], [float(lr)], [int(seed)]
        except ValueError:
            raise SystemExit(f"error: --single wants METHOD:BITS:LR:SEED, got {args.single!r}")
    for m in methods:
        for b in bits_list:
            try:
                quant.resolve_spec(m, b)  # names a bad method or bit width before any work
            except ValueError as error:
                raise SystemExit(f"error: {error}")
    if not lrs or not seeds or any(lr <= 0 or not math.isfinite(lr) for lr in lrs):
        raise SystemExit(f"error: --lrs must list positive finite learning rates and --seeds at least one seed")
    check_library_or_exit(args, methods, bits_list)
    t_start = time.time()

    corpus = data.load_corpus()
    log(f"corpus: King James Bible (Debian bible-kjv), {len(corpus.train) + len(corpus.val):,} chars, "
        f"vocab {corpus.vocab_size}, train {len(corpus.train):,} / val {len(corpus.val):,}, "
        f"sha256 {corpus.text_sha256[:16]}... (verified); unigram entropy {corpus.unigram_entropy:.4f} nats/char")
    model_cfg = ModelConfig(corpus.vocab_size, args.context, args.d_model, args.n_layers, args.n_heads)
    pcfg = train.PretrainConfig(model_cfg.to_dict(), args.pretrain_steps, args.pretrain_lr, args.pretrain_batch,
                                args.pretrain_warmup, seed=1, threads=args.pretrain_threads, eval_windows=args.eval_windows)
    if args.single and not os.path.exists(os.path.join(out, "fp_model.pt")):
        raise SystemExit(f"error: --single needs the pretrained model in {out}: run the sweep (or --quick) first")
    fp_model, fp_info = train.load_or_pretrain(corpus, pcfg, out, log)
    fp_path = os.path.join(out, "fp_model.pt")
    fp_state = fp_model.state_dict()

    runs, aliases = build_runs(args, methods, bits_list, lrs, seeds)
    if args.single:
        cfg = runs[0]
        result = train.qat_run(corpus, fp_state, fp_info, model_cfg, cfg,
                               args.run_dir or os.path.join(runs_dir, cfg.run_id()), args.resume, save_final=True,
                               throttle=args.throttle)
        log(json.dumps({k: result[k] for k in ("run_id", "impl", "val_loss", "val_loss_hex", "diverged",
                                              "max_distinct_per_row", "steps_done")}))
        return 0

    # No-QAT baseline: each grid in use, rounded at the initial steps.
    no_qat = {}
    for bits in bits_list:
        for method in methods:
            spec = quant.resolve_spec(method, bits)
            if (bits, spec.grid) not in no_qat:
                no_qat[(bits, spec.grid)] = train.rtn_baseline(corpus, fp_state, model_cfg, method, bits, args.impl,
                                                               args.eval_windows)
                r = no_qat[(bits, spec.grid)]
                log(f"no-QAT baseline {bits}-bit {spec.grid}: val {r['val_loss']:.4f} nats/char ({r['impl']})")

    # The sweep. Finished runs are reused with --resume; otherwise every run starts afresh.
    results, todo = [], []
    for cfg in runs:
        run_dir = os.path.join(runs_dir, cfg.run_id())
        path = os.path.join(run_dir, "result.json")
        if args.resume and os.path.exists(path):
            with open(path) as f:
                r = json.load(f)
            same = all(r.get("impl_requested" if k == "impl" else k) == v for k, v in asdict(cfg).items())
            if same and r.get("steps_done", 0) > 0:
                results.append(r)
                continue
        if not args.resume and os.path.isdir(run_dir):
            shutil.rmtree(run_dir)
        todo.append(cfg)
    # Final models are kept for the integer export of the best ones (pruned after it) when the
    # package can export, or all of them with --save-final.
    export_ok, export_why = export.export_status()
    keep_final = args.save_final or export_ok
    total_steps = sum(c.steps for c in todo)
    log(f"sweep: {len(runs)} runs ({len(results)} reused), {len(aliases)} aliases; methods {','.join(methods)}; "
        f"bits {bits_list}; lrs {lrs}; seeds {seeds}; {args.qat_steps} steps x batch {args.qat_batch}; "
        f"{args.workers} workers; impl {args.impl}")
    t_sweep = time.time()
    done_steps = 0
    errors = []
    if todo:
        tasks = [(cfg, os.path.join(runs_dir, cfg.run_id()), args.resume, keep_final) for cfg in todo]
        if args.workers <= 1:   # in this process: no worker start-up (quick mode)
            _W.update(corpus=corpus, fp_state=fp_state, fp_info=fp_info, model_cfg=model_cfg)
            pool, finished = None, map(_worker_run, tasks)
        else:
            pool = mp.get_context("spawn").Pool(args.workers, initializer=_worker_init,
                                                initargs=(fp_path, fp_info, model_cfg.to_dict()))
            finished = pool.imap_unordered(_worker_run, tasks)
        try:
            for i, r in enumerate(finished, start=1):
                if "error" in r:
                    errors.append(r["error"])
                    log(f"[{i}/{len(todo)}] FAILED {r['error']}")
                    continue
                results.append(r)
                done_steps += r["steps"]
                elapsed = time.time() - t_sweep
                eta = elapsed / done_steps * (total_steps - done_steps)
                log(f"[{i}/{len(todo)}] {r['run_id']:<28} val {r['val_loss']:.4f} nats/char "
                    f"{'DIVERGED ' if r['diverged'] else ''}spikes {r['spikes']} ({r['impl']}, {r['seconds']:.0f} s)  "
                    f"elapsed {train.fmt_time(time.time() - t_start)}  ETA {train.fmt_time(eta)}")
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
    if errors:
        for e in errors:
            log(f"error: {e}")
        return 1
    by_id = {r["run_id"]: r for r in results}
    for cfg, owner_cfg in aliases:
        r = dict(by_id[owner_cfg.run_id()])
        r.update(run_id=cfg.run_id(), method=cfg.method, same_as=owner_cfg.run_id())
        r["spec"] = dict(r["spec"], method=cfg.method)
        results.append(r)

    # Export the best 2- and 4-bit models when the package can (optional; needs final.pt).
    export_rows = []
    fp_eval = {"val_loss": fp_info["val_loss"]}
    summary = report.summarize(results, corpus.unigram_entropy, no_qat)
    ok, why = export_ok, export_why
    exported_dirs = set()
    train.set_determinism(1)    # evaluate as the runs did (one thread), so the losses compare bit for bit
    for bits in (2, 4):
        cells = [s for s in summary if s["bits"] == bits and s["best_lr"] != ""]
        if not cells:
            continue
        best = min(cells, key=lambda s: s["best_val_loss"])
        name = f"{best['method']} {bits}-bit lr {best['best_lr']:g}"
        if not ok:
            export_rows.append({"model": name, "status": "export unavailable", "packed_bytes": None,
                                "fp32_bytes": None, "detail": why})
            continue
        # The best model: the best cell's seed with the lowest validation loss at its best lr.
        run = min((r for r in results if r["method"] == best["method"] and r["bits"] == bits
                   and r["lr"] == best["best_lr"]), key=lambda r: (r["val_loss"], r["seed"]))
        name = f"{best['method']} {bits}-bit lr {best['best_lr']:g} seed {run['seed']}"
        src = os.path.join(runs_dir, run.get("same_as") or run["run_id"], "final.pt")
        exported_dirs.add(os.path.dirname(src))
        if not os.path.exists(src):
            export_rows.append({"model": name, "status": "export unavailable", "packed_bytes": None, "fp32_bytes": None,
                                "detail": f"no {os.path.relpath(src, out)}: the run finished before the export was "
                                          "available; delete its directory and rerun with --resume"})
            continue
        model = TransformerLM(model_cfg)
        quant.quantize_model(model, quant.make_quantizer(best["method"], bits, args.impl), quantization_targets(model))
        model.load_state_dict(torch.load(src))
        vx, vy = data.val_windows(corpus, model_cfg.context, args.eval_windows)
        meta = {k: run[k] for k in ("run_id", "method", "bits", "lr", "seed", "impl", "val_loss_hex")}
        meta["src"] = os.path.basename(os.path.dirname(src))
        row = export.export_model(model, vx, vy, os.path.join(out, f"export-b{bits}.pt"), meta)
        if row["status"] == "ok" and row["val_fake_quant_hex"] != run["val_loss_hex"]:
            row["detail"] += f"; WARNING: the run recorded val {run['val_loss_hex']} (final.pt is another model)"
        export_rows.append({"model": name, **row})
        log(f"export {name}: {row['status']}: {row['detail']}")
    if keep_final and not args.save_final:
        for r in results:
            run_dir = os.path.join(runs_dir, r["run_id"])
            final = os.path.join(run_dir, "final.pt")
            if run_dir not in exported_dirs and os.path.exists(final):
                os.remove(final)

    header = {"mode": "quick" if args.quick else "default sweep", "date": time.strftime("%Y-%m-%d %H:%M"),
              "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs",
              "torch": torch.__version__, "impl requested": args.impl,
              "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
              "model": f"{count_parameters(fp_model):,} parameters (d={args.d_model}, layers={args.n_layers}, "
                       f"heads={args.n_heads}, context={args.context})",
              "pretraining": f"{args.pretrain_steps} steps x {args.pretrain_batch}x{args.context} chars, "
                             f"sha256 {fp_info['sha256'][:16]}...",
              "QAT": f"{args.qat_steps} steps x {args.qat_batch}x{args.context} chars, AdamW wd 0, cosine, no warm-up",
              "corpus sha256": corpus.text_sha256, "divergence cap (unigram entropy)": f"{corpus.unigram_entropy:.4f}",
              "wall time": train.fmt_time(time.time() - t_start)}
    report.write_csv(os.path.join(out, "runs.csv"), report.RUN_COLUMNS, sorted(results, key=lambda r: r["run_id"]))
    fp_row = {"method": "fp", "bits": 32, "impl": "-", "best_val_loss": fp_info["val_loss"],
              "best_bits_per_char": fp_info["val_loss"] / math.log(2)}
    report.write_csv(os.path.join(out, "summary.csv"), report.SUMMARY_COLUMNS, [fp_row] + summary)
    with open(os.path.join(out, "no_qat.json"), "w") as f:
        json.dump([dict(v, grid=k[1]) for k, v in sorted(no_qat.items())], f, indent=1)
    text = report.write_markdown(os.path.join(out, "results.md"), header, summary, no_qat, fp_eval, export_rows)
    plot_status = report.write_plots(out, results, summary, runs_dir, corpus.unigram_entropy)
    log(text)
    log(plot_status)
    log(f"wrote {out}/runs.csv, summary.csv, results.md in {train.fmt_time(time.time() - t_start)}")

    if args.quick:
        return quick_checks(corpus, fp_info, results, no_qat)
    return 0


def quick_checks(corpus, fp_info, results, no_qat) -> int:
    """What --quick must show (also asserted by tests/lm.cmake)."""
    failures = []
    if corpus.text_sha256 != data.TEXT_SHA256:
        failures.append("corpus checksum")
    if not fp_info["val_loss"] < QUICK_FP_BOUND:
        failures.append(f"full precision did not learn: val {fp_info['val_loss']:.4f} >= {QUICK_FP_BOUND}")
    for r in results + [dict(v, run_id=f"no-QAT {k}") for k, v in no_qat.items()]:
        if not math.isfinite(r["val_loss"]):
            failures.append(f"{r['run_id']}: non-finite validation loss")
        if r["max_distinct_per_row"] > (1 << r["bits"]) or r["max_distinct_per_row"] < 1:
            failures.append(f"{r['run_id']}: {r['max_distinct_per_row']} distinct values in a row > 2^{r['bits']}")
    for f in failures:
        log(f"QUICK CHECK FAILED: {f}")
    if not failures:
        log(f"quick checks passed: checksum, fp val {fp_info['val_loss']:.4f} < {QUICK_FP_BOUND}, "
            f"{len(results)} runs finite with <= 2^bits values per row")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
