"""The tuned lens on tiny random and shipped models: training, artifacts, formats, refusals."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from tiny_models import tiny_hf_model

from probes.lenses.logit import LogitLens
from probes.lenses.reading import read_options
from probes.lenses.tuned import (
    LensFileError,
    LensMismatchError,
    TrainingSettings,
    Translators,
    TunedLens,
    load_lens,
    load_tuned_lens_format,
    save_lens,
    save_tuned_lens_format,
    train_lens,
    training_windows,
)
from probes.lenses.tuned.access import model_fingerprint
from probes.lenses.tuned.text import start_token, text_windows
from probes.model.loading import from_hf_model
from probes.tasks import Item

ITEMS = [
    Item("a", "t", "w1 w2 w3", " w4", " w5"),
    Item("b", "t", "w7 w8 w9 w10 w11", " w4 w6", " w5", options=(" w4 w6", " w5", " w9 w10")),
]


@pytest.fixture(scope="module")
def neox(tokenizer):
    return from_hf_model(tiny_hf_model("neox", seed=0), tokenizer, name="tiny-neox")


@pytest.fixture(scope="module")
def trained(neox):
    windows = training_windows(neox, n_train=32, n_held_out=8, length=12, seed=0)
    settings = TrainingSettings(train_steps=25, batch_size=8, learning_rate=3e-3, seed=0)
    return train_lens(neox, windows, settings, progress=False)


def _random_lens(model, seed: int = 0) -> TunedLens:
    """A lens with small random translators (so it differs from the logit lens)."""
    translators = Translators(model.n_layers, model.d_model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in translators.parameters():
            parameter.copy_(0.2 * torch.randn(parameter.shape, generator=generator))
    return TunedLens(translators, {"model": model.name, "model_fingerprint": model_fingerprint(model)})


def test_training_lowers_held_out_kl_at_every_layer_but_the_last(trained, neox):
    kl = trained.info["held_out_kl"]
    assert len(kl["logit"]) == len(kl["tuned"]) == neox.n_layers + 1
    assert kl["logit"][-1] == pytest.approx(0, abs=1e-6) and kl["tuned"][-1] == pytest.approx(0, abs=1e-6)
    for layer in range(neox.n_layers):
        assert kl["tuned"][layer] < kl["logit"][layer], (layer, kl)
    assert trained.info["model_fingerprint"] == model_fingerprint(neox)
    assert trained.info["steps"] == 25 and trained.info["text"] == "self-sampled"


def test_training_is_deterministic_given_the_seed(neox):
    windows = training_windows(neox, n_train=8, n_held_out=0, length=8, seed=1)
    assert torch.equal(windows.train, training_windows(neox, n_train=8, n_held_out=0, length=8, seed=1).train)
    settings = TrainingSettings(train_steps=4, batch_size=4, seed=1)
    first, second = (train_lens(neox, windows, settings, progress=False) for _ in range(2))
    assert first.weights_hash == second.weights_hash
    assert "held_out_kl" not in first.info  # nothing held out, nothing measured


def test_untrained_lens_is_the_logit_lens(neox):
    untrained = TunedLens(
        Translators(neox.n_layers, neox.d_model), {"model_fingerprint": model_fingerprint(neox)}
    )
    logit = read_options(neox, ITEMS, LogitLens())
    tuned = read_options(neox, ITEMS, untrained)
    for a, b in zip(logit.logprobs, tuned.logprobs):  # one readout path: equal to the last bit
        assert torch.equal(a, b)


@pytest.mark.parametrize("family", ["gpt2", "neox", "llama"])
def test_training_reads_what_the_lens_reads(family, tokenizer):
    """The full-vocabulary readout the lens is trained and measured with is the lens's own readout."""
    from probes.lenses.tuned.access import full_log_probs

    model = from_hf_model(tiny_hf_model(family), tokenizer, name=family)
    lens = _random_lens(model)
    resid = torch.randn(model.n_layers + 1, 5, model.d_model, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([3, 1, 4, 1, 5])
    layers = list(range(model.n_layers + 1))
    read = lens.read(model, resid, layers, targets)
    with torch.no_grad():
        full = torch.stack([full_log_probs(model, v) for v in lens.translate(resid, layers)])
    torch.testing.assert_close(full.gather(-1, targets.expand(len(layers), -1)[..., None])[..., 0], read)


@pytest.mark.parametrize("family", ["gpt2", "neox", "llama"])
def test_last_layer_of_both_lenses_is_the_model_output(family, tokenizer):
    model = from_hf_model(tiny_hf_model(family), tokenizer, name=family)
    reference = tiny_hf_model(family)  # the same weights, never bridged
    lens = _random_lens(model)
    readouts = [read_options(model, ITEMS, lens_) for lens_ in (LogitLens(), lens)]
    for index, item in enumerate(ITEMS):
        for option_index, option in enumerate(item.options):
            prompt_ids = tokenizer(item.prompt).input_ids
            answer_ids = tokenizer(option, add_special_tokens=False).input_ids
            with torch.no_grad():
                logprobs = reference(torch.tensor([prompt_ids + answer_ids])).logits.log_softmax(-1)[0]
            expected = sum(logprobs[len(prompt_ids) - 1 + j, t].item() for j, t in enumerate(answer_ids))
            for readout in readouts:
                assert readout.logprobs[index][-1, option_index].item() == pytest.approx(expected, abs=1e-4)
    # ... and the random translators do change the earlier layers.
    assert not torch.allclose(readouts[0].logprobs[0][0], readouts[1].logprobs[0][0])


def test_save_load_round_trip(trained, neox, tmp_path):
    folder = save_lens(trained, tmp_path / "lens")
    info = json.loads((folder / "lens.json").read_text())
    assert info["n_layers"] == neox.n_layers and info["held_out_kl"] == trained.info["held_out_kl"]
    assert info["weights_sha256"] == trained.weights_hash
    loaded = load_lens(folder, neox)
    assert loaded.weights_hash == trained.weights_hash
    for a, b in zip(read_options(neox, ITEMS, trained).logprobs, read_options(neox, ITEMS, loaded).logprobs):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_corrupted_weights_are_refused(trained, tmp_path):
    folder = save_lens(trained, tmp_path / "lens")
    from safetensors.torch import load_file, save_file

    state = load_file(str(folder / "lens.safetensors"))
    state["0.bias"] = state["0.bias"] + 1
    save_file(state, str(folder / "lens.safetensors"))
    with pytest.raises(LensFileError, match="weights_sha256"):
        load_lens(folder)
    with pytest.raises(LensFileError, match="no lens.json"):
        load_lens(tmp_path)


def test_lens_is_refused_on_another_model(trained, tokenizer, tmp_path):
    folder = save_lens(trained, tmp_path / "lens")
    same_shape = from_hf_model(tiny_hf_model("neox", seed=5), tokenizer, name="other-neox")
    with pytest.raises(LensMismatchError, match="other weights"):
        load_lens(folder, same_shape)
    deeper = from_hf_model(tiny_hf_model("neox", seed=0, n_layers=4), tokenizer, name="deep-neox")
    with pytest.raises(LensMismatchError, match="4 layers"):
        load_lens(folder, deeper)
    with pytest.raises(LensMismatchError):
        read_options(same_shape, ITEMS, load_lens(folder))


def test_tuned_lens_library_format_round_trip(neox, tokenizer, tmp_path):
    lens = _random_lens(neox, seed=3)
    folder = save_tuned_lens_format(lens, tmp_path / "tl", neox)
    config = json.loads((folder / "config.json").read_text())
    assert config["lens_type"] == "linear_tuned_lens" and config["num_hidden_layers"] == neox.n_layers
    state = torch.load(folder / "params.pt", weights_only=True)
    assert sorted(state) == sorted(f"{i}.{p}" for i in range(neox.n_layers) for p in ("weight", "bias"))
    loaded = load_tuned_lens_format(folder, neox)
    assert loaded.weights_hash == lens.weights_hash
    for a, b in zip(read_options(neox, ITEMS, lens).logprobs, read_options(neox, ITEMS, loaded).logprobs):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    other = from_hf_model(tiny_hf_model("neox", seed=5), tokenizer, name="other-neox")
    with pytest.raises(LensMismatchError, match="unembed"):
        load_tuned_lens_format(folder, other)


class _Payload:
    """An object that unpickling would construct (and could run code with)."""

    def __reduce__(self):
        return (print, ("unpickled!",))


def test_tuned_lens_library_format_never_unpickles_objects(neox, tmp_path):
    folder = save_tuned_lens_format(_random_lens(neox), tmp_path / "tl", neox)
    with (folder / "params.pt").open("wb") as handle:
        pickle.dump({"0.weight": _Payload()}, handle)
    with pytest.raises(LensFileError, match="holds pickled objects") as caught:
        load_tuned_lens_format(folder, neox)
    assert "weights_only" not in str(caught.value)  # no hint at a way around the refusal


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"d_model": 60000}, "describes 3 translators of width 60000"),
        ({"n_layers": 10**6}, "describes 1000000 translators"),
        ({"d_model": 32.5}, "d_model 32.5 is not a positive whole number"),
        ({"n_layers": True}, "n_layers True is not a positive whole number"),
    ],
)
def test_lens_json_sizes_are_checked_before_anything_is_allocated(
    change, message, trained, tmp_path, monkeypatch
):
    """A lens.json asking for 14 GB of translators is refused from the weights file's header."""
    import probes.lenses.tuned.artifacts as artifacts

    folder = save_lens(trained, tmp_path / "lens")
    info = json.loads((folder / "lens.json").read_text())
    (folder / "lens.json").write_text(json.dumps({**info, **change}))

    def no_allocation(*args, **kwargs):
        raise AssertionError("translators were allocated before the sizes were checked")

    monkeypatch.setattr(artifacts, "Translators", no_allocation)
    with pytest.raises(LensFileError, match=message):
        load_lens(folder)


def test_a_lens_larger_than_the_free_memory_is_refused(trained, tmp_path, monkeypatch):
    from probes.model import memory

    folder = save_lens(trained, tmp_path / "lens")
    monkeypatch.setattr(memory, "available_bytes", lambda device: 1000)
    with pytest.raises(
        memory.MemoryCheckError, match=r"lens.json\), but cpu has 0.0 GiB free; check that file's sizes"
    ):
        load_lens(folder)


def test_text_windows_hold_out_and_need_enough_text(neox):
    text = " ".join(f"w{i % 200}" for i in range(400))
    windows = text_windows(neox, text, "t.txt", n_train=100, n_held_out=5, length=16, seed=0)
    body = 15 if start_token(neox) is not None else 16  # a start token opens each window
    assert windows.train.shape == (400 // body - 5, 16) and windows.held_out.shape == (5, 16)
    seen = {tuple(row.tolist()) for row in windows.train}
    assert not seen & {tuple(row.tolist()) for row in windows.held_out}
    from probes.lenses.tuned.text import TrainingTextError

    with pytest.raises(TrainingTextError, match="windows"):
        text_windows(neox, "w1 w2 w3", "short.txt", n_train=4, n_held_out=2, length=16, seed=0)


def test_shipped_organism_lenses_beat_the_logit_lens_and_refuse_other_rungs():
    from probes.ladders import get_ladder
    from probes.lenses.registry import choose_lens
    from probes.lenses.tuned import read_info
    from probes.model.loading import load_model

    for spec in map(str, get_ladder("organism").model_specs()):
        choice = choose_lens("tuned", spec)  # no --lens-dir: the lens shipped with the rung
        kl = read_info(choice.folder)["held_out_kl"]
        assert kl["tuned"][-1] == kl["logit"][-1] == 0
        assert all(t < g for t, g in zip(kl["tuned"][:-1], kl["logit"][:-1])), (spec, kl)
    largest = load_model("organism:4x96")
    lens = choose_lens("tuned", "organism:4x96").build(largest)
    assert lens.weights_hash == choose_lens("tuned", "organism:4x96").weights_hash
    with pytest.raises(LensMismatchError, match="other weights"):
        load_lens(choose_lens("tuned", "organism:4x96").folder, load_model("organism:4x96-step1500"))
    with pytest.raises(LensMismatchError, match="layers"):
        load_lens(choose_lens("tuned", "organism:4x96").folder, load_model("organism:3x64"))


def test_every_rung_of_every_builtin_ladder_ships_a_lens_that_loads_on_it():
    """A shipped lens whose rung was retrained is refused (fingerprint): retrain it with
    ``python -m experiments.tuned_lens.ship <ladder>``."""
    from probes.builtin.folders import builtin_catalogues
    from probes.lenses.registry import choose_lens
    from probes.lenses.tuned import read_info
    from probes.model.loading import load_model

    for catalogue in builtin_catalogues():
        for rung in catalogue.rung_names():
            spec = catalogue.model_spec(rung)
            choice = choose_lens("tuned", spec)
            model = load_model(spec)
            lens = choice.build(model)  # checks the weights fingerprint
            assert lens.weights_hash == choice.weights_hash == read_info(choice.folder)["weights_sha256"]
            assert read_info(choice.folder)["model_fingerprint"] == model_fingerprint(model), (
                f"{spec}: stamped with the old fingerprint; run experiments/tuned_lens/restamp.py"
            )
            kl = read_info(choice.folder)["held_out_kl"]
            assert all(t < g for t, g in zip(kl["tuned"][:-1], kl["logit"][:-1])), (spec, kl)


def test_the_fingerprint_and_shipped_lenses_do_not_depend_on_the_backend():
    """The bridge splits GPT-NeoX's fused qkv into q, k and v copies; the fingerprint skips them, so a
    lens trained under one backend loads under the other (it was refused under nnsight before)."""
    pytest.importorskip("nnsight")
    from probes.lenses.registry import choose_lens
    from probes.model.loading import load_model

    bridge, nnsight = load_model("organism:1x32"), load_model("organism:1x32", backend="nnsight")
    assert len(list(bridge.backend.parameters())) > len(bridge.weights) == len(nnsight.weights)
    assert model_fingerprint(bridge) == model_fingerprint(nnsight)
    choose_lens("tuned", "organism:1x32").build(nnsight)  # the shipped lens: checked, accepted


def test_read_position_kl_is_the_kl_at_each_items_last_prompt_token(neox):
    """Zero at the last layer under both lenses; the logit lens's value at a layer is the KL of its
    full-vocabulary readout at the last prompt token; a batch of prompts of different lengths gives
    what one prompt at a time gives; a lens that differs from the logit lens reads differently."""
    from probes.lenses.reading import encode_item
    from probes.lenses.tuned.access import full_log_probs, residuals_at
    from probes.lenses.tuned.training import read_position_kl

    lens = _random_lens(neox)
    logit = read_position_kl(neox, None, ITEMS)
    tuned = read_position_kl(neox, lens, ITEMS)
    assert logit.shape == tuned.shape == (len(ITEMS), neox.n_layers + 1)
    assert torch.allclose(logit[:, -1], torch.zeros(len(ITEMS), dtype=torch.float64), atol=1e-6)
    assert torch.allclose(tuned[:, -1], torch.zeros(len(ITEMS), dtype=torch.float64), atol=1e-6)
    assert not torch.allclose(logit[:, 0], tuned[:, 0])
    for row, item in enumerate(ITEMS):
        assert torch.allclose(read_position_kl(neox, lens, [item])[0], tuned[row], atol=1e-5)
        ids = torch.tensor([encode_item(item, neox.tokenizer, neox.n_ctx).prompt_ids])
        last = torch.tensor([ids.shape[1] - 1])
        resid = residuals_at(neox, ids, torch.ones_like(ids), [1, neox.n_layers], torch.tensor([0]), last)
        target, read = full_log_probs(neox, resid[1]), full_log_probs(neox, resid[0])
        expected = float((target.exp() * (target - read)).sum())
        assert logit[row, 1] == pytest.approx(expected, rel=1e-4, abs=1e-6)
