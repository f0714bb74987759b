"""The one door to the model: HookedModel and its bridge backend on tiny GPT-2, GPT-NeoX and Llama models."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from probes.ablate.prompts import PromptBatch, encode_prompts, run
from probes.tasks import Item

PROMPTS = [[3, 7, 9, 11, 4], [5, 6, 2], [8, 8, 8, 8]]

#: The modules that may reach the model behind HookedModel's back: loading, the view, the backends.
#: The model package's modules that may reach the wrapped model: the loader, the standard view,
#: the protocol, the exactness check against plain transformers, and the backends' own packages.
BACKEND_MODULES = (
    "model/__init__.py",
    "model/loading.py",
    "model/hooked.py",
    "model/backend.py",
    "model/check.py",
)
BACKEND_PACKAGES = ("model/bridge", "model/nnsight")


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    from probes.lenses.reading import right_padded

    return right_padded(PROMPTS)


def test_sizes_and_hook_names_come_from_the_model(tiny_model):
    assert tiny_model.n_heads == 4 and tiny_model.n_layers == 3
    names = [
        *tiny_model.resid_hook_names,
        *(tiny_model.head_hook(layer) for layer in range(3)),
        *(tiny_model.attn_out_hook(layer) for layer in range(3)),
        *(tiny_model.mlp_out_hook(layer) for layer in range(3)),
        tiny_model.final_norm_scale_hook,
    ]
    assert len(tiny_model.resid_hook_names) == 4
    assert set(names) <= tiny_model.hook_points()


def test_residuals_at_match_the_hooked_run_and_stop_early(tiny_model):
    input_ids, attention_mask = _batch()
    rows, positions = torch.tensor([0, 1, 2, 0]), torch.tensor([4, 2, 3, 1])
    resid = tiny_model.residuals_at(input_ids, attention_mask, [0, 2, 3], rows, positions)
    cache: dict[str, torch.Tensor] = {}

    def keep(name: str):
        return lambda activation, hook: cache.__setitem__(name, activation.detach())

    hooks = [(tiny_model.resid_hook(layer), keep(tiny_model.resid_hook(layer))) for layer in (0, 2, 3)]
    with torch.inference_mode():
        tiny_model.run_with_hooks(input_ids, attention_mask, hooks)
    for index, layer in enumerate((0, 2, 3)):
        expected = cache[tiny_model.resid_hook(layer)][rows, positions]
        torch.testing.assert_close(resid[index], expected, atol=2e-5, rtol=1e-4)
    calls = []
    handle = tiny_model.blocks[-1].register_forward_hook(lambda *args: calls.append(1))
    try:
        tiny_model.residuals_at(input_ids, attention_mask, [1], rows, positions)
    finally:
        handle.remove()
    assert calls == []  # the forward pass stopped after block 0


def test_logits_final_norm_and_unembedding_reproduce_the_output(tiny_model):
    input_ids, attention_mask = _batch()
    with torch.inference_mode():
        logits = tiny_model.logits(input_ids, attention_mask)
        rows, positions = torch.tensor([0, 1, 2]), torch.tensor([4, 2, 3])
        last = tiny_model.residuals_at(input_ids, attention_mask, [3], rows, positions)[0]
        rebuilt = tiny_model.unembed(tiny_model.apply_final_norm(last))
        targets = torch.tensor([1, 2, 3])
        log_probs = tiny_model.log_probs(last, targets)
    expected = logits[rows, positions]
    torch.testing.assert_close(rebuilt, expected, atol=4e-5, rtol=1e-4)
    torch.testing.assert_close(
        log_probs, expected.log_softmax(-1)[torch.arange(3), targets], atol=4e-5, rtol=1e-4
    )


def test_frozen_final_norm_with_the_run_s_scale_is_the_final_norm(tiny_model):
    """The affine view attribution relies on, for LayerNorm (GPT-2, NeoX) and RMSNorm (Llama)."""
    input_ids, attention_mask = _batch()
    last, scale = tiny_model.resid_hook(3), tiny_model.final_norm_scale_hook
    cache: dict[str, torch.Tensor] = {}
    hooks = [(name, lambda a, hook, name=name: cache.__setitem__(name, a.detach())) for name in (last, scale)]
    with torch.inference_mode():
        tiny_model.run_with_hooks(input_ids, attention_mask, hooks)
        frozen = tiny_model.frozen_final_norm(cache[last].float(), cache[scale].float())
        if tiny_model.final_norm_bias is not None:
            frozen = frozen + tiny_model.final_norm_bias
        expected = tiny_model.apply_final_norm(cache[last])
    torch.testing.assert_close(frozen, expected, atol=2e-5, rtol=1e-4)


def test_generate_is_greedy_argmax(tiny_model):
    prompt = torch.tensor([PROMPTS[0]])
    options = {"max_new_tokens": 3, "do_sample": False, "pad_token_id": 1, "use_cache": False}
    output = tiny_model.generate(prompt, torch.ones_like(prompt), **options)
    tokens = prompt
    for _ in range(3):
        with torch.inference_mode():
            next_token = tiny_model.logits(tokens)[:, -1].argmax(-1, keepdim=True)
        tokens = torch.cat([tokens, next_token], dim=1)
    assert output.tolist() == tokens.tolist()


def test_generate_with_the_key_value_cache_is_plain_transformers(tiny_model):
    """The cache on (as chain-of-thought generation runs): the bridge's attention must read it."""
    from tiny_models import tiny_hf_model

    plain = tiny_hf_model(tiny_model.name.removeprefix("tiny-"))  # the fixture's weights, not bridged
    prompt = torch.tensor([PROMPTS[0], [5, 6, 2, 8, 8]])
    options = {"max_new_tokens": 6, "do_sample": False, "pad_token_id": 1}
    expected = plain.generate(prompt, attention_mask=torch.ones_like(prompt), **options)
    assert tiny_model.generate(prompt, torch.ones_like(prompt), **options).tolist() == expected.tolist()


def test_answer_only_cache_is_the_answer_position_of_the_whole_cache(tiny_model):
    items = [
        Item(id=f"i{n}", task="t", prompt=prompt, true_answer=" w1", distractor_answer=" w2")
        for n, prompt in enumerate(["w3 w4 w5", "w6", "w7 w8"])
    ]
    batch = PromptBatch.of(encode_prompts(items, tiny_model))
    names = [tiny_model.head_hook(1), tiny_model.mlp_out_hook(2)]
    _, whole = run(tiny_model, batch, cache_names=names)
    _, answer = run(tiny_model, batch, cache_names=names, answer_only=True)
    rows = torch.arange(len(items))
    for name in names:
        assert torch.equal(answer[name], whole[name][rows, batch.answer_positions])


def test_no_module_reaches_behind_the_model_s_back():
    """Only the loader, the standard view, the protocol and the backends' packages
    (probes/model/bridge/, probes/model/nnsight/) touch the bridge, the HF model or the norm type.

    An SAE's own configuration (``sae.cfg``, its ``cfg.json``: SAELens's names) is not the model's.
    """
    root = Path(__file__).resolve().parents[2] / "probes"
    side_door = re.compile(
        r"(?<!model)\.bridge\b|\bhf_model\b|original_model|(?<!sae\.)\bcfg\.(?!json\b)|normalization_type"
        r"|hook_dict"
    )
    offenders = [
        f"{path.relative_to(root)}:{number}"
        for path in sorted(root.rglob("*.py"))
        if path.relative_to(root).as_posix() not in BACKEND_MODULES
        and not path.relative_to(root).as_posix().startswith(BACKEND_PACKAGES)
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if side_door.search(line) and "from_hf_model" not in line
    ]
    assert offenders == []
