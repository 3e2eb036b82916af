"""Integer export through the op library (issue 14 + docs/export.md).

Dequantized weights must be the fake-quantized weights bit for bit (but -0,
which integer codes cannot carry, comes back +0); packed bytes are checked
against bytes computed by hand from the format's definition.
"""

import pytest
import torch

import stableqat

# (bits, grid, qmin, qmax, expected code dtype)
GRIDS = [
    (1, "signed", -1, 1, torch.int8),  # binary: sign(v), three codes
    (2, "signed", -2, 1, torch.int8),
    (2, "ternary", -1, 1, torch.int8),
    (4, "signed", -8, 7, torch.int8),
    (8, "signed", -128, 127, torch.int8),
    (12, "signed", -2048, 2047, torch.int16),
    (2, "unsigned", 0, 3, torch.uint8),
    (4, "unsigned", 0, 15, torch.uint8),
    (12, "unsigned", 0, 4095, torch.int32),
]


def bits_of(t: torch.Tensor) -> torch.Tensor:
    """The bit patterns, so that equality is bitwise (and NaN/-0 are not special)."""
    return t.contiguous().view(torch.int32 if t.dtype == torch.float32 else torch.int64)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bits,grid,qmin,qmax,code_dtype", GRIDS)
@pytest.mark.parametrize("layout", ["tensor", "row", "group"])
def test_dequantize_is_fake_quantize_bit_for_bit(dtype, bits, grid, qmin, qmax, code_dtype, layout):
    g = torch.Generator().manual_seed(bits * 31 + len(grid))
    rows, cols = 6, 13  # 13 codes: rows end mid-byte for 2- and 4-bit fields
    x = torch.randn(rows, cols, generator=g, dtype=dtype) * 3
    x[0, :4] = torch.tensor([0.0, -0.0, -1e-3, float("inf")], dtype=dtype)
    x[1, :2] = torch.tensor([-float("inf"), 1e30], dtype=dtype)
    kw = {}
    if layout == "tensor":
        step = torch.tensor([0.37], dtype=dtype)
    elif layout == "row":
        step = torch.rand(rows, generator=g, dtype=dtype) + 0.1
        kw["axis"] = 0
    else:
        step = torch.rand(rows * cols // 26, generator=g, dtype=dtype) + 0.1
        kw["group_size"] = 26
    y = stableqat.fake_quantize(x, step, bits, grid=grid, **kw)
    codes = stableqat.quantize_to_codes(x, step, bits, grid=grid, **kw)
    assert codes.dtype == code_dtype
    assert int(codes.min()) >= qmin and int(codes.max()) <= qmax
    # Codes are the levels of y: y / s is an integer on the grid (independent check).
    s = step.repeat_interleave(x.numel() // step.numel()).reshape(x.shape)
    assert torch.equal(codes.to(torch.float64), (y.to(torch.float64) / s.to(torch.float64)).round())
    packed = stableqat.pack_codes(codes, bits, grid=grid)
    assert packed.dtype == torch.uint8
    field = {torch.int8: 8, torch.uint8: 8, torch.int16: 16, torch.int32: 16}[code_dtype]
    field = 2 if qmax - qmin < 4 else 4 if qmax - qmin < 16 else field
    assert tuple(packed.shape) == (rows, (cols * field + 7) // 8)
    assert torch.equal(stableqat.unpack_codes(packed, x.shape, bits, grid=grid), codes)
    back = stableqat.dequantize(packed, step, x.shape, bits, grid=grid, **kw)
    assert back.dtype == dtype
    assert torch.equal(bits_of(back), bits_of(y + 0.0))  # y + 0.0: -0 -> +0, the one documented difference
    assert bool((bits_of(y) != bits_of(back)).any()) == bool(((y == 0) & torch.signbit(y)).any())


def test_packed_bytes_by_hand_signed_2bit():
    # grid [-2, 1]; fields: -2 -> 0b10, -1 -> 0b11, 0 -> 0b00, 1 -> 0b01; element 0 in the low bits.
    x = torch.tensor([[-2.0, -1.0, 0.0, 1.0, 1.0],
                      [0.4, -0.6, 7.0, -7.0, -0.2]])
    step = torch.tensor([1.0, 0.5])
    codes = stableqat.quantize_to_codes(x, step, 2, axis=0)
    assert codes.tolist() == [[-2, -1, 0, 1, 1], [1, -1, 1, -2, 0]]
    packed = stableqat.pack_codes(codes, 2)
    # row 0: 0b01_00_11_10 = 0x4E, then code 1 -> 0x01; row 1: 0b10_01_11_01 = 0x9D, then 0x00.
    assert packed.tolist() == [[0x4E, 0x01], [0x9D, 0x00]]


def test_packed_bytes_by_hand_unsigned_4bit():
    x = torch.tensor([[3.0, 20.0, 9.2]])
    codes = stableqat.quantize_to_codes(x, torch.tensor([1.0]), 4, grid="unsigned")
    assert codes.dtype == torch.uint8 and codes.tolist() == [[3, 15, 9]]
    assert stableqat.pack_codes(codes, 4, grid="unsigned").tolist() == [[0xF3, 0x09]]


def test_unsigned_16bit_codes_travel_as_int32():
    x = torch.tensor([[0.0, 1000.0, 70000.0]], dtype=torch.float64)
    codes = stableqat.quantize_to_codes(x, torch.tensor([1.0], dtype=torch.float64), 16, grid="unsigned")
    assert codes.dtype == torch.int32 and codes.tolist() == [[0, 1000, 65535]]
    assert stableqat.pack_codes(codes, 16, grid="unsigned").tolist() == [[0, 0, 0xE8, 0x03, 0xFF, 0xFF]]
    with pytest.raises(ValueError, match="codes"):
        stableqat.pack_codes(torch.tensor([[70000]], dtype=torch.int32), 16, grid="unsigned")


def test_bad_packed_input():
    with pytest.raises(RuntimeError, match="uint8"):
        stableqat.dequantize(torch.zeros(1, 1, dtype=torch.int8), torch.ones(1), [1, 4], 2)
    with pytest.raises(ValueError, match="packed"):
        stableqat.dequantize(torch.zeros(1, 5, dtype=torch.uint8), torch.ones(1), [1, 4], 2)
    with pytest.raises(RuntimeError, match="dtype"):
        stableqat.pack_codes(torch.zeros(1, 4, dtype=torch.int32), 2)
    # -2 is not a ternary code (field 0b10): rejected, nothing written.
    with pytest.raises(ValueError):
        stableqat.dequantize(torch.tensor([[0b10]], dtype=torch.uint8), torch.ones(1), [1, 1], 2, grid="ternary")


def test_export_and_load_a_trained_model():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 24), torch.nn.ReLU(), torch.nn.Linear(24, 5))
    assert stableqat.quantize_model(model, bits=2, estimator="stableqat", skip=()) == ["0", "2"]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(32, 16)
    loss = model(x).square().mean()
    loss.backward()
    opt.step()
    exported = stableqat.export_quantized(model)
    assert set(exported) == {"0", "2"}
    e = exported["0"]
    assert e["packed"].shape == (24, 4) and e["code_bits"] == 2 and e["signed"]
    assert torch.equal(e["step"], model[0].weight_step.detach())
    for name in ("0", "2"):
        w = stableqat.dequantize_entry(exported[name])
        assert torch.equal(bits_of(w), bits_of(model[int(name)].quantized_weight().detach() + 0.0))
    fresh = torch.nn.Sequential(torch.nn.Linear(16, 24), torch.nn.ReLU(), torch.nn.Linear(24, 5))
    stableqat.quantize_model(fresh, bits=2, estimator="stableqat", skip=())
    assert stableqat.load_quantized(fresh, exported) == ["0", "2"]
    with torch.no_grad():
        for i in (0, 2):
            assert torch.equal(fresh[i].quantized_weight() + 0.0, model[i].quantized_weight() + 0.0)
        assert torch.equal(fresh(x), model(x))
    with pytest.raises(KeyError):
        stableqat.load_quantized(torch.nn.Sequential(torch.nn.Linear(16, 24)), exported)
