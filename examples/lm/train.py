"""Training loops of the LM experiment: full-precision pretraining (cached), QAT fine-tuning from
it, the no-QAT (round-to-nearest) baseline, and checkpoints that survive SIGKILL.

Determinism: every run fixes torch's thread count (RunConfig.threads, default 1; parallelism comes
from running several runs at once), turns on torch.use_deterministic_algorithms, draws its batches
from its own torch.Generator and stores that generator's state, the global torch/python RNG
states, the AdamW state and its loss/gradient history in each checkpoint. A run killed at any point
and resumed from its last checkpoint therefore replays the lost steps bit for bit and ends with
the same final validation loss as an uninterrupted run (tested by tests/lm.cmake).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field

import torch

import quant
from data import Corpus, train_batch, val_windows
from model import ModelConfig, TransformerLM, count_parameters, evaluate, quantization_targets

CHECKPOINT_VERSION = 1
SPIKE_RATIO = 1.25      # loss spike: train loss > SPIKE_RATIO x the EMA of the previous losses
SPIKE_EMA = 0.9
SPIKE_SKIP = 10         # the first steps of a run set the EMA, they are not judged


def set_determinism(threads: int) -> None:
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_save(obj, path: str) -> None:
    """torch.save to a temporary file in the same directory, fsync, then os.replace: a reader (or
    a resume after SIGKILL) sees either the previous complete file or the new complete file."""
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_text(text: str, path: str) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def cosine_lr(base: float, step: int, total: int, warmup: int = 0, floor: float = 0.0) -> float:
    """Linear warm-up over `warmup` steps (0 for QAT, as the paper), then cosine decay from `base`
    to `floor * base` at the last step."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    return base * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress)))


@dataclass
class History:
    loss: list = field(default_factory=list)        # train loss per step (nats/char)
    grad_norm: list = field(default_factory=list)   # global L2 norm of all gradients per step
    clamped: int = 0                                # steps/alphas clamped by quant.post_step
    nonfinite_step: int = -1                        # first step with a non-finite loss or gradient


@dataclass
class LoopConfig:
    steps: int
    lr: float
    batch: int
    context: int
    seed: int
    warmup: int = 0
    lr_floor: float = 0.0
    ckpt_every: int = 50
    threads: int = 1


def train_loop(model: TransformerLM, corpus: Corpus, cfg: LoopConfig, ckpt_path: str | None,
               identity: dict, resume: bool, progress=None, throttle: float = 0.0) -> History:
    """AdamW (weight decay 0, torch defaults otherwise) over all parameters with the cosine
    schedule, checkpointing every cfg.ckpt_every steps to ckpt_path. `identity` (configuration,
    checksums) is stored in the checkpoint; a resume from a checkpoint with another identity is
    refused. Stops at the first non-finite loss or gradient (the run has diverged)."""
    set_determinism(cfg.threads)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    data_gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    history = History()
    start = 0
    if resume and ckpt_path and os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path)
        if ck.get("version") != CHECKPOINT_VERSION or ck.get("identity") != identity:
            raise RuntimeError(f"{ckpt_path} belongs to another run configuration; delete it or run without --resume")
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        data_gen.set_state(ck["rng"]["data"])
        torch.set_rng_state(ck["rng"]["torch"])
        random.setstate(ck["rng"]["python"])
        history = History(**ck["history"])
        start = ck["step"]
    elif ckpt_path and os.path.exists(ckpt_path):
        os.remove(ckpt_path)

    def save(step: int) -> None:
        atomic_save({"version": CHECKPOINT_VERSION, "identity": identity, "step": step,
                     "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "rng": {"data": data_gen.get_state(), "torch": torch.get_rng_state(),
                             "python": random.getstate()},
                     "history": asdict(history)}, ckpt_path)

    model.train()
    params = [p for p in model.parameters()]
    for step in range(start, cfg.steps):
        if history.nonfinite_step >= 0:
            break
        lr = cosine_lr(cfg.lr, step, cfg.steps, cfg.warmup, cfg.lr_floor)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = train_batch(corpus, cfg.batch, cfg.context, data_gen)
        loss = model.loss(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norms = torch.stack([p.grad.detach().double().norm() for p in params if p.grad is not None])
        grad_norm = float(norms.norm())
        loss_value = float(loss.detach())
        history.loss.append(loss_value)
        history.grad_norm.append(grad_norm)
        if not (math.isfinite(loss_value) and math.isfinite(grad_norm)):
            history.nonfinite_step = step
            break
        optimizer.step()
        history.clamped += quant.post_step(model)
        if ckpt_path and ((step + 1) % cfg.ckpt_every == 0 or step + 1 == cfg.steps):
            save(step + 1)
        if progress is not None:
            progress(step + 1, cfg.steps, loss_value)
        if throttle > 0:
            time.sleep(throttle)
    if ckpt_path and history.nonfinite_step >= 0:
        save(len(history.loss))
    return history


# ---------------------------------------------------------------------------------------------
# Pretraining (full precision, cached on disk)
# ---------------------------------------------------------------------------------------------

@dataclass
class PretrainConfig:
    model: dict            # ModelConfig fields
    steps: int
    lr: float
    batch: int
    warmup: int
    seed: int
    threads: int
    eval_windows: int


def pretrain_identity(cfg: PretrainConfig, corpus: Corpus) -> dict:
    return {"pretrain": asdict(cfg), "corpus_sha256": corpus.text_sha256, "torch": torch.__version__}


def load_or_pretrain(corpus: Corpus, cfg: PretrainConfig, out_dir: str, log=print) -> tuple[TransformerLM, dict]:
    """The full-precision model of `cfg`: loaded from out_dir/fp_model.pt when that file's SHA-256
    matches out_dir/fp_model.json and its recorded configuration is `cfg`, else trained (resumable
    through out_dir/fp_pretrain.ckpt) and saved with its checksum. Returns (model, info)."""
    os.makedirs(out_dir, exist_ok=True)
    model_path = os.path.join(out_dir, "fp_model.pt")
    info_path = os.path.join(out_dir, "fp_model.json")
    identity = pretrain_identity(cfg, corpus)
    mcfg = ModelConfig(**cfg.model)
    if os.path.exists(model_path) and os.path.exists(info_path):
        with open(info_path) as f:
            info = json.load(f)
        if info.get("identity") == identity and info.get("sha256") == file_sha256(model_path):
            model = TransformerLM(mcfg)
            model.load_state_dict(torch.load(model_path))
            log(f"pretrained model: cached {model_path} (sha256 {info['sha256'][:16]}..., val {info['val_loss']:.4f} nats/char)")
            return model, info
        log(f"pretrained model: {model_path} does not match this configuration or its checksum; retraining")
    set_determinism(cfg.threads)
    torch.manual_seed(cfg.seed)
    model = TransformerLM(mcfg)
    log(f"pretraining {count_parameters(model):,} parameters ({cfg.steps} steps, batch {cfg.batch}x{mcfg.context}, "
        f"lr {cfg.lr}, {cfg.threads} threads)")
    t0, c0 = time.time(), time.process_time()
    last = [t0]

    def progress(step, total, loss):
        now = time.time()
        if now - last[0] >= 10 or step == total:
            last[0] = now
            eta = (now - t0) / step * (total - step)
            log(f"  pretrain step {step}/{total}  loss {loss:.3f}  elapsed {fmt_time(now - t0)}  ETA {fmt_time(eta)}")

    loop = LoopConfig(cfg.steps, cfg.lr, cfg.batch, mcfg.context, cfg.seed, warmup=cfg.warmup, lr_floor=0.1,
                      ckpt_every=100, threads=cfg.threads)
    ckpt = os.path.join(out_dir, "fp_pretrain.ckpt")
    history = train_loop(model, corpus, loop, ckpt, identity, resume=True, progress=progress)
    if history.nonfinite_step >= 0:
        raise RuntimeError(f"pretraining diverged at step {history.nonfinite_step}: lower --pretrain-lr")
    vx, vy = val_windows(corpus, mcfg.context, cfg.eval_windows)
    val = evaluate(model, vx, vy)
    atomic_save(model.state_dict(), model_path)
    info = {"identity": identity, "sha256": file_sha256(model_path), "val_loss": val,
            "train_loss_last50": sum(history.loss[-50:]) / len(history.loss[-50:]),
            "first_loss": history.loss[0], "parameters": count_parameters(model),
            "seconds": time.time() - t0, "cpu_seconds": time.process_time() - c0}
    atomic_write_text(json.dumps(info, indent=1), info_path)
    os.remove(ckpt)
    log(f"pretrained: val {val:.4f} nats/char ({val / math.log(2):.4f} bits/char) in {fmt_time(info['seconds'])}")
    return model, info


def fmt_time(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


# ---------------------------------------------------------------------------------------------
# QAT runs and the no-QAT baseline
# ---------------------------------------------------------------------------------------------

@dataclass
class RunConfig:
    method: str
    bits: int
    lr: float
    seed: int
    steps: int
    batch: int
    impl: str              # "library" | "reference" | "auto"
    ckpt_every: int
    eval_windows: int
    threads: int = 1

    def run_id(self) -> str:
        return f"{self.method}-b{self.bits}-lr{self.lr:g}-s{self.seed}"


def spike_count(losses: list[float]) -> int:
    """Steps whose loss exceeds SPIKE_RATIO x the exponential moving average of the losses before it."""
    count, ema = 0, None
    for i, value in enumerate(losses):
        if ema is not None and i >= SPIKE_SKIP and value > SPIKE_RATIO * ema:
            count += 1
        ema = value if ema is None else SPIKE_EMA * ema + (1 - SPIKE_EMA) * value
    return count


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    t = torch.tensor(values, dtype=torch.float64)
    return float(torch.quantile(t, q / 100.0))


def qat_run(corpus: Corpus, fp_state: dict, fp_info: dict, model_cfg: ModelConfig, cfg: RunConfig,
            run_dir: str, resume: bool, save_final: bool = False, throttle: float = 0.0) -> dict:
    """QAT fine-tuning of the pretrained model with one method, bit width, learning rate and seed.
    Writes run_dir/result.json (and curve.dat: step, train loss, gradient norm) and returns the result."""
    os.makedirs(run_dir, exist_ok=True)
    set_determinism(cfg.threads)
    t0, c0 = time.time(), time.process_time()
    quantizer = quant.make_quantizer(cfg.method, cfg.bits, cfg.impl)
    model = TransformerLM(model_cfg)
    model.load_state_dict(fp_state)
    quant.quantize_model(model, quantizer, quantization_targets(model))
    identity = {"run": asdict(cfg), "spec": quantizer.spec.to_dict(), "impl": quantizer.impl,
                "fp_sha256": fp_info["sha256"], "corpus_sha256": corpus.text_sha256, "model": model_cfg.to_dict()}
    vx, vy = val_windows(corpus, model_cfg.context, cfg.eval_windows)
    loop = LoopConfig(cfg.steps, cfg.lr, cfg.batch, model_cfg.context, cfg.seed, ckpt_every=cfg.ckpt_every,
                      threads=cfg.threads)
    history = train_loop(model, corpus, loop, os.path.join(run_dir, "ckpt.pt"), identity, resume, throttle=throttle)
    nonfinite = history.nonfinite_step >= 0
    val = float("nan") if nonfinite else evaluate(model, vx, vy)
    finite_params = all(bool(torch.isfinite(p).all()) for p in model.parameters())
    diverged = nonfinite or not finite_params or not math.isfinite(val) or val > corpus.unigram_entropy
    result = {
        "run_id": cfg.run_id(), **asdict(cfg), "impl_requested": cfg.impl, "impl": quantizer.impl,
        "impl_detail": quantizer.detail,
        "spec": quantizer.spec.to_dict(),
        "val_loss": val, "val_bits_per_char": val / math.log(2), "val_loss_hex": float(val).hex(),
        "diverged": diverged, "nonfinite_step": history.nonfinite_step,
        "steps_done": len(history.loss), "first_loss": history.loss[0] if history.loss else float("nan"),
        "final_train_loss": history.loss[-1] if history.loss else float("nan"),
        "spikes": spike_count(history.loss), "clamped": history.clamped,
        "grad_norm_p50": percentile(history.grad_norm, 50), "grad_norm_p90": percentile(history.grad_norm, 90),
        "grad_norm_p99": percentile(history.grad_norm, 99),
        "grad_norm_max": max(history.grad_norm) if history.grad_norm else float("nan"),
        "max_distinct_per_row": quant.max_distinct_per_row(model) if finite_params else -1,
        "dsq_alpha": [float(m.dsq_alpha) for _, m in quant.quant_layers(model) if m.dsq_alpha is not None],
        "seconds": time.time() - t0, "cpu_seconds": time.process_time() - c0,
    }
    with open(os.path.join(run_dir, "curve.dat"), "w") as f:
        f.write("# step train_loss grad_norm\n")
        for i, (l, g) in enumerate(zip(history.loss, history.grad_norm)):
            f.write(f"{i + 1} {l:.6g} {g:.6g}\n")
    if save_final:
        atomic_save(model.state_dict(), os.path.join(run_dir, "final.pt"))
    atomic_write_text(json.dumps(result, indent=1), os.path.join(run_dir, "result.json"))
    return result


@torch.no_grad()
def rtn_baseline(corpus: Corpus, fp_state: dict, model_cfg: ModelConfig, method: str, bits: int, impl: str,
                 eval_windows: int, threads: int = 1) -> dict:
    """The no-QAT baseline: the pretrained model with each block linear rounded to the method's
    grid at its initial steps (round to nearest, no training)."""
    set_determinism(threads)
    quantizer = quant.make_quantizer(method, bits, impl)
    model = TransformerLM(model_cfg)
    model.load_state_dict(fp_state)
    quant.quantize_model(model, quantizer, quantization_targets(model))
    vx, vy = val_windows(corpus, model_cfg.context, eval_windows)
    val = evaluate(model, vx, vy)
    return {"method": method, "bits": bits, "grid": quantizer.spec.grid, "impl": quantizer.impl,
            "val_loss": val, "val_bits_per_char": val / math.log(2),
            "max_distinct_per_row": quant.max_distinct_per_row(model)}
