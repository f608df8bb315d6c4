"""self_certainty: equal to a naive full-softmax reference, chunked memory, edge rows."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

from rewards import self_certainty  # noqa: E402


def naive(logits, mask, variant):
    """Full [batch, tokens, vocab] softmax in float64: the definition, not the fast path."""
    z = logits.double()
    vocab = z.shape[-1]
    log_p = torch.log_softmax(z, dim=-1)
    if variant == "kl_p_u":
        p = log_p.exp()
        per_token = math.log(vocab) + torch.where(p > 0, p * log_p, torch.zeros_like(p)).sum(-1)
    else:
        per_token = torch.logsumexp(z, -1) - z.mean(-1) - math.log(vocab)
    m = mask.double()
    counts = m.sum(-1)
    return torch.where(counts > 0, (per_token * m).sum(-1) / counts.clamp(min=1), torch.zeros_like(counts))


def random_case(seed, batch=4, tokens=23, vocab=257, scale=4.0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    logits = (torch.randn(batch, tokens, vocab, generator=gen) * scale).to(dtype)
    mask = torch.rand(batch, tokens, generator=gen) < 0.4
    mask[0] = False  # a row with no rationale token
    return logits, mask


@pytest.mark.parametrize("variant", ["kl_p_u", "kl_u_p"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("chunk_size", [1, 7, 10_000])
def test_matches_naive_reference(variant, dtype, chunk_size):
    for seed in range(3):
        logits, mask = random_case(seed, dtype=dtype)
        got = self_certainty(logits, mask, variant=variant, chunk_size=chunk_size)
        assert got.dtype == torch.float32 and got.shape == (4,)
        assert got[0] == 0  # empty mask row
        torch.testing.assert_close(got.double(), naive(logits, mask, variant), atol=1e-5, rtol=0)


@pytest.mark.parametrize("variant", ["kl_p_u", "kl_u_p"])
def test_realistic_vocab_and_peaked_distributions(variant):
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 16, 32_000, generator=gen) * 3
    logits[:, :, 5] += 40  # a confident model
    mask = torch.ones(2, 16, dtype=torch.bool)
    mask[1, 8:] = False
    got = self_certainty(logits, mask, variant=variant, chunk_size=5)
    torch.testing.assert_close(got.double(), naive(logits, mask, variant), atol=1e-5, rtol=0)


def test_known_values():
    uniform = torch.zeros(1, 3, 10)
    mask = torch.ones(1, 3)
    assert self_certainty(uniform, mask).item() == pytest.approx(0.0, abs=1e-6)
    assert self_certainty(uniform, mask, variant="kl_u_p").item() == pytest.approx(0.0, abs=1e-6)
    one_hot = torch.full((1, 1, 10), -math.inf)
    one_hot[0, 0, 3] = 0.0
    # A certain token: KL(p || U) = log V; KL(U || p) is infinite.
    assert self_certainty(one_hot, torch.ones(1, 1)).item() == pytest.approx(math.log(10), abs=1e-6)
    assert self_certainty(one_hot, torch.ones(1, 1), variant="kl_u_p").item() == math.inf


def test_mask_may_be_int_or_float_and_rows_average_only_masked_tokens():
    logits, mask = random_case(5)
    expected = self_certainty(logits, mask)
    torch.testing.assert_close(self_certainty(logits, mask.int()), expected)
    torch.testing.assert_close(self_certainty(logits, mask.float()), expected)
    # Changing logits at unmasked positions changes nothing.
    noisy = logits.clone()
    noisy[~mask] = torch.randn(int((~mask).sum()), logits.shape[-1]) * 50
    torch.testing.assert_close(self_certainty(noisy, mask), expected)


def test_non_contiguous_logits():
    logits, mask = random_case(6)
    transposed = logits.transpose(0, 1).contiguous().transpose(0, 1)
    assert not transposed.is_contiguous()
    torch.testing.assert_close(self_certainty(transposed, mask), self_certainty(logits, mask))


def test_empty_inputs():
    assert self_certainty(torch.zeros(0, 5, 7), torch.zeros(0, 5)).shape == (0,)
    assert self_certainty(torch.zeros(3, 0, 7), torch.zeros(3, 0)).tolist() == [0.0, 0.0, 0.0]
    assert self_certainty(torch.randn(2, 4, 7), torch.zeros(2, 4)).tolist() == [0.0, 0.0]


def test_no_grad_and_grad_inputs():
    logits, mask = random_case(8)
    logits.requires_grad_(True)
    out = self_certainty(logits, mask)
    assert not out.requires_grad
    with torch.no_grad():
        torch.testing.assert_close(self_certainty(logits, mask), out)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"logits": torch.zeros(2, 3), "mask": torch.zeros(2, 3)}, r"logits must be \[batch, tokens, vocab\]"),
    ({"logits": torch.zeros(2, 3, 4), "mask": torch.zeros(3, 2)}, r"mask must be \[batch, tokens\]"),
    ({"logits": torch.zeros(2, 3, 0), "mask": torch.zeros(2, 3)}, "empty vocabulary"),
    ({"logits": torch.zeros(2, 3, 4), "mask": torch.zeros(2, 3), "variant": "entropy"}, "variant"),
    ({"logits": torch.zeros(2, 3, 4), "mask": torch.zeros(2, 3), "chunk_size": 0}, "chunk_size"),
])
def test_bad_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        self_certainty(**kwargs)


class LargestAllocation(TorchDispatchMode):
    """Records the element count of the largest tensor storage any aten op allocates.

    Views share their input's storage and are not counted; everything an op really
    creates (casts, gathers, softmax outputs, temporaries returned by ops) is.
    """

    def __init__(self):
        super().__init__()
        self.largest = 0
        self.op = None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage().data_ptr() for t in _tensors((args, kwargs)) if t.numel()}
        for tensor in _tensors(out):
            storage = tensor.untyped_storage()
            if storage.data_ptr() in inputs:
                continue
            elements = storage.nbytes() // tensor.element_size()
            if elements > self.largest:
                self.largest, self.op = elements, str(func)
        return out


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors(item)


@pytest.mark.parametrize("variant", ["kl_p_u", "kl_u_p"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_chunked_path_never_allocates_tokens_by_vocab(variant, dtype):
    batch, tokens, vocab, chunk = 3, 40, 500, 8
    logits = torch.randn(batch, tokens, vocab).to(dtype)
    mask = torch.ones(batch, tokens, dtype=torch.bool)  # 120 masked tokens = 15 chunks
    with LargestAllocation() as meter:
        self_certainty(logits, mask, variant=variant, chunk_size=chunk)
    assert 0 < meter.largest <= chunk * vocab, (meter.largest, meter.op)


def test_allocation_meter_catches_a_full_softmax():
    """The meter above really fails an implementation that softmaxes the whole tensor."""
    logits = torch.randn(3, 40, 500).to(torch.bfloat16)
    with LargestAllocation() as meter:
        torch.softmax(logits.float(), dim=-1)
    assert meter.largest >= 3 * 40 * 500
    with LargestAllocation() as meter:
        self_certainty(logits, torch.ones(3, 40), chunk_size=3 * 40)
    assert meter.largest >= 3 * 40 * 500  # one chunk covering everything is, honestly, full size


def test_import_rewards_does_not_import_torch():
    code = ("import sys, rewards; from shop_env import Action; rewards.score('x', Action('terminate'));"
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_from_entropy_matches_logits_path():
    from rewards import self_certainty_from_entropy

    logits, mask = random_case(9, vocab=300)
    log_p = torch.log_softmax(logits.double(), -1)
    entropy = -(log_p.exp() * log_p).sum(-1)
    entropy[~mask] = math.nan  # padding garbage must not leak in
    got = self_certainty_from_entropy(entropy, mask, vocab_size=300)
    torch.testing.assert_close(got, self_certainty(logits, mask), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="vocab_size"):
        self_certainty_from_entropy(entropy, mask, vocab_size=0)
    with pytest.raises(ValueError, match=r"\[batch, tokens\]"):
        self_certainty_from_entropy(entropy, mask[:, :3], vocab_size=300)
