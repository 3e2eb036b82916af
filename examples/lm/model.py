"""A small decoder-only transformer (GPT-style, pre-norm) in plain PyTorch.

block(x) = x + attn(LN(x)); x + mlp(LN(x)), causal multi-head attention, GELU MLP of
width 4*d. Every nn.Linear inside `blocks` (qkv, proj, fc, out) is a quantization
target; the token/position embeddings, the final LayerNorm and `lm_head` stay in
full precision, as in the paper.

Default size (d=128, 5 layers, 4 heads, context 128, vocab 63): 1,024,191 parameters,
of which 983,040 in the 20 quantized linear weights.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    context: int = 128
    d_model: int = 128
    n_layers: int = 5
    n_heads: int = 4

    def to_dict(self) -> dict:
        return asdict(self)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.d_model % cfg.n_heads != 0:
            raise ValueError(f"d_model ({cfg.d_model}) must be a multiple of n_heads ({cfg.n_heads})")
        self.n_heads = cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        mask = torch.triu(torch.full((cfg.context, cfg.context), float("-inf")), diagonal=1)
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.n_heads
        q, k, v = self.qkv(x).view(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
        # Explicit softmax attention: deterministic on CPU and free of fused kernels
        # whose numerics could differ between torch builds.
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d // h)) + self.mask[:t, :t]
        y = att.softmax(dim=-1) @ v
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, 4 * cfg.d_model)
        self.out = nn.Linear(4 * cfg.d_model, cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(F.gelu(self.fc(x)))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class TransformerLM(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.context, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size)
        self.apply(self._init)
        # GPT-2's scaled init of the residual projections keeps the residual stream's
        # variance independent of depth.
        for name, p in self.named_parameters():
            if name.endswith("proj.weight") or name.endswith("out.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        if t > self.cfg.context:
            raise ValueError(f"sequence length {t} exceeds the context {self.cfg.context}")
        x = self.tok(idx) + self.pos.weight[:t]
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))

    def loss(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy in nats per character."""
        logits = self.forward(idx)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def quantization_targets(model: TransformerLM) -> list[str]:
    """Names of the nn.Linear modules inside the blocks (everything the paper quantizes)."""
    return [name for name, m in model.named_modules() if name.startswith("blocks.") and isinstance(m, nn.Linear)]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def evaluate(model: TransformerLM, inputs: torch.Tensor, targets: torch.Tensor, batch: int = 64) -> float:
    """Mean validation cross-entropy (nats/char) over fixed windows, summed in float64
    so the value does not depend on the evaluation batch size's rounding."""
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64)
    for i in range(0, inputs.shape[0], batch):
        logits = model(inputs[i:i + batch])
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets[i:i + batch].reshape(-1),
                                 reduction="sum").double()
    model.train(was_training)
    return float(total / targets.numel())
