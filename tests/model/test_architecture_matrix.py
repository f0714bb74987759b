"""The architecture matrix: every family of tests/model/families.py through every backend that takes
it reads per-layer log-probs equal to plain transformers (hidden state, the family's own final
norm, project_out, unembedding and output transform; the last layer its own logits) to 1e-4,
batched with padding and one item at a time, with the prompt-cache path equal to whole rows; a
head ablation and a tuned lens too. A backend that refuses a family refuses it with one clear
error, and the default backend (auto) then runs it with the other one."""

from __future__ import annotations

import pytest
from families import FAMILIES, Family

from probes.errors import UnsupportedModelError
from probes.model.check import TOLERANCE, check_model
from probes.model.loading import from_hf_model
from probes.tasks.items import Item

pytest.importorskip("nnsight")


def _items() -> list[Item]:
    """Prompts of 1 to 6 words; options of 1 to 3 tokens that share starts (packed continuations)."""
    prompts = ["w3 w4 w5 w6 w7 w8", "w9", "w10 w11 w12", "w13 w14 w15 w16"]
    options = (" w1 w5", " w2", " w1 w5 w6", " w7 w8 w9")
    return [Item(f"i{n}", "toy", prompt, options[0], options[1], options) for n, prompt in enumerate(prompts)]


CASES = [
    pytest.param(family, backend, id=f"{family.name}-{backend}")
    for family in FAMILIES
    for backend in ("bridge", "nnsight")
]


@pytest.mark.parametrize(("family", "backend"), CASES)
def test_family_reads_exactly(family: Family, backend: str, tokenizer):
    if backend in family.refused:
        with pytest.raises(UnsupportedModelError, match=family.model_class):
            from_hf_model(family.build(), tokenizer, name=family.name, backend=backend)
        return
    result = check_model(family.build(), tokenizer, backend, name=family.name, items=_items())
    assert result.reference_difference <= TOLERANCE  # the reference readout is the model's own
    assert result.output_spread > 0.01  # not a model whose every readout is uniform
    assert len(result.layer_differences) == 3
    assert result.lens_difference is not None and result.lens_difference <= TOLERANCE, result.line()
    assert result.cache_difference is None or result.cache_difference <= TOLERANCE, result.line()
    assert result.ablation_difference is not None and result.ablation_difference <= TOLERANCE, result.line()
    assert result.tuned_difference is not None and result.tuned_difference <= TOLERANCE, result.line()
    assert result.exact


def test_the_matrix_covers_what_makes_families_differ():
    """At least 15 families each backend reads, and the bridge continues prompt caches on most."""
    for backend in ("bridge", "nnsight"):
        assert sum(backend not in family.refused for family in FAMILIES) >= 15


@pytest.mark.parametrize("family", [f for f in FAMILIES if f.refused], ids=lambda f: f.name)
def test_the_default_runs_a_family_one_backend_refuses_with_the_other(family: Family, tokenizer, capsys):
    model = from_hf_model(family.build(), tokenizer, name=family.name)  # backend "auto"
    (other,) = {"bridge", "nnsight"} - set(family.refused)
    assert model.describe()["backend"] == other
    said = capsys.readouterr().err
    if other == "nnsight":  # the fallback says so, in one line naming the model and the reason
        assert said.count("\n") == 1 and "runs with the nnsight backend" in said and family.name in said
        with pytest.raises(UnsupportedModelError, match="backend='bridge'"):
            _ = model.bridge  # what needs the bridge says which backend it needs
    else:
        assert said == ""


@pytest.mark.parametrize("family", [f for f in FAMILIES if not f.refused], ids=lambda f: f.name)
def test_both_backends_read_and_replace_every_hook_point_alike(family: Family, tokenizer):
    """Attention, MLP, head and residual hook points: the nnsight backend's values are the bridge's
    (a module that adds the residual inside would differ here), and replacements act alike."""
    import copy

    import torch

    from probes.lenses.reading import right_padded

    hf_model = family.build()
    pair = [
        from_hf_model(copy.deepcopy(hf_model), tokenizer, name=family.name, backend=backend)
        for backend in ("bridge", "nnsight")
    ]
    names = sorted(pair[0].hook_points() & pair[1].hook_points())
    assert pair[1].hook_points() <= pair[0].hook_points()
    input_ids, attention_mask = right_padded([[3, 7, 9, 11, 4], [5, 6, 2]])
    caches: list[dict[str, torch.Tensor]] = [{}, {}]
    hooks = [
        (pair[0].head_hook(1), lambda a, hook: a * 0.5),
        (pair[0].mlp_out_hook(0), lambda a, hook: a * 0),
    ]
    with torch.inference_mode():
        for model, cache in zip(pair, caches):
            keep = [(n, lambda a, hook, n=n, cache=cache: cache.__setitem__(n, a.clone())) for n in names]
            model.run_with_hooks(input_ids, attention_mask, keep)
        replaced = [model.run_with_hooks(input_ids, attention_mask, hooks) for model in pair]
    for name in names:
        torch.testing.assert_close(caches[1][name].float(), caches[0][name].float(), atol=TOLERANCE, rtol=0)
    torch.testing.assert_close(replaced[1], replaced[0], atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize(("family", "backend"), [c for c in CASES if c.values[1] not in c.values[0].refused])
def test_final_norm_and_unembedding_rebuild_the_logits(family: Family, backend: str, tokenizer):
    """What attribution reads: ``unembed(apply_final_norm(last residual))`` is the model's output
    (through any project_out and output transform), and ``W_U`` is as wide as the residual stream."""
    import torch

    from probes.lenses.reading import right_padded

    model = from_hf_model(family.build(), tokenizer, name=family.name, backend=backend)
    input_ids, attention_mask = right_padded([[3, 7, 9, 11, 4], [5, 6, 2]])
    rows, positions = torch.tensor([0, 1]), torch.tensor([4, 2])
    with torch.inference_mode():
        logits = model.logits(input_ids, attention_mask)[rows, positions]
        last = model.residuals_at(input_ids, attention_mask, [model.n_layers], rows, positions)[0]
        rebuilt = model.unembed(model.apply_final_norm(last))
    torch.testing.assert_close(rebuilt.float(), logits.float(), atol=TOLERANCE, rtol=0)
    assert model.unembedding_weights.shape == (model.d_model, logits.shape[-1])
