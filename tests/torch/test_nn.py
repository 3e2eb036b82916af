"""QuantLinear, quantize_model, state_dict, repr and TorchScript."""

import io

import torch
import torch.nn.functional as F
from torch import nn

import reference as ref
import stableqat


def test_quantlinear_forward_and_init():
    torch.manual_seed(0)
    layer = stableqat.QuantLinear(16, 8, bits=3, estimator="stableqat")
    w = layer.weight.detach()
    assert torch.allclose(layer.weight_step.detach(), w.abs().amax(1) / 3, rtol=1e-6, atol=0)
    x = torch.randn(5, 16)
    want = F.linear(x, ref.forward(w, layer.weight_step.detach(), 3, axis=0), layer.bias.detach())
    assert torch.allclose(layer(x), want, rtol=1e-6, atol=1e-6)


def test_quantlinear_gradients_match_eq10():
    torch.manual_seed(1)
    layer = stableqat.QuantLinear(32, 8, bits=2, estimator="stableqat", dtype=torch.float64)
    x = torch.randn(4, 32, dtype=torch.float64)
    layer(x).square().sum().backward()
    w, s = layer.weight.detach(), layer.weight_step.detach()
    wq = ref.forward(w, s, 2, axis=0).requires_grad_()
    F.linear(x, wq, layer.bias.detach()).square().sum().backward()
    want_dw, want_ds = ref.backward(wq.grad, w, s, 2, ref.paper_coefficients(0.21, 1), axis=0)
    assert torch.allclose(layer.weight.grad, want_dw, atol=1e-12, rtol=0)
    assert torch.allclose(layer.weight_step.grad, want_ds, atol=1e-12, rtol=1e-10)


def test_repr_and_state_dict_round_trip():
    torch.manual_seed(2)
    layer = stableqat.QuantLinear(16, 4, bits=4, estimator="stableqat", harmonics=3, amplitude=0.2)
    assert repr(layer) == ("QuantLinear(in_features=16, out_features=4, bias=True, bits=4, grid='signed', "
                           "estimator='stableqat', harmonics=3, amplitude=0.2)")
    with torch.no_grad():
        layer.weight_step.mul_(1.5)
    state = layer.state_dict()
    assert sorted(state) == ["bias", "weight", "weight_step"]
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    other = stableqat.QuantLinear(16, 4, bits=4, estimator="stableqat", harmonics=3, amplitude=0.2)
    other.load_state_dict(torch.load(buffer))
    x = torch.randn(3, 16)
    assert torch.equal(other(x), layer(x))
    assert torch.equal(other.weight_step, layer.weight_step)


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(20, 16)
        self.block = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 16))
        self.lm_head = nn.Linear(16, 20)

    def forward(self, tokens):
        return self.lm_head(self.block(self.embed(tokens)))


def test_quantize_model_swaps_linears_keeps_embedding_and_head():
    torch.manual_seed(3)
    model = Tiny()
    tokens = torch.randint(0, 20, (4, 6))
    before = model.block[0].weight.detach().clone()
    changed = stableqat.quantize_model(model, bits=2, estimator="stableqat", skip=("lm_head",))
    assert changed == ["block.0", "block.2"]
    assert type(model.lm_head) is nn.Linear and type(model.embed) is nn.Embedding
    assert isinstance(model.block[0], stableqat.QuantLinear) and torch.equal(model.block[0].weight, before)
    assert stableqat.quantize_model(model, bits=2) == []  # idempotent
    # one training step moves weights and steps
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = F.cross_entropy(model(tokens).reshape(-1, 20), tokens.reshape(-1))
    loss.backward()
    steps_before = model.block[0].weight_step.detach().clone()
    opt.step()
    assert not torch.equal(model.block[0].weight_step, steps_before)
    exported = {name: m.weight_step.detach() for name, m in model.named_modules()
                if isinstance(m, stableqat.QuantLinear)}
    assert list(exported) == ["block.0", "block.2"] and (exported["block.0"] > 0).all()


def test_torchscript_same_outputs_gradients_and_save_load(tmp_path):
    torch.manual_seed(4)
    model = nn.Sequential(stableqat.QuantLinear(16, 32, bits=2), nn.ReLU(),
                          stableqat.QuantLinear(32, 4, bits=4, estimator="ste", mask_band="aten"))
    scripted = torch.jit.script(model)
    x = torch.randn(8, 16)

    def grads(m):
        m.zero_grad()
        out = m(x)
        out.square().sum().backward()
        return out.detach(), [p.grad.clone() for p in m.parameters()]

    out_eager, g_eager = grads(model)
    out_script, g_script = grads(scripted)
    assert torch.equal(out_eager, out_script)
    assert all(torch.equal(a, b) for a, b in zip(g_eager, g_script))
    path = tmp_path / "model.pt"
    torch.jit.save(scripted, str(path))
    loaded = torch.jit.load(str(path))
    out_loaded, g_loaded = grads(loaded)
    assert torch.equal(out_loaded, out_eager)
    assert all(torch.equal(a, b) for a, b in zip(g_eager, g_loaded))
    assert "stableqat::fake_quantize" in loaded.code or "stableqat::fake_quantize" in str(loaded.graph) or \
        "stableqat" in loaded._c.dump_to_str(True, False, False)
