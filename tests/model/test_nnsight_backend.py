"""The nnsight backend gives the bridge backend's numbers: tiny GPT-2, GPT-NeoX and Llama models,
the built-in ladder through `probes run`, NDIF requests run by nnsight's local execution."""

from __future__ import annotations

import copy

import pytest
import torch
from tiny_models import tiny_hf_model

from probes.ablate.ablation import ablate
from probes.ablate.attribution import attribute
from probes.ablate.components import all_heads, all_mlps
from probes.ablate.patching import pair_items, patch
from probes.ablate.prompts import encode_prompts
from probes.errors import ProbesError
from probes.lenses.reading import read_options, right_padded
from probes.model.loading import from_hf_model, load_model
from probes.tasks.items import Item

pytest.importorskip("nnsight")

#: The bar: float32 numbers of the two backends agree to 1e-4.
TOLERANCE = 1e-4
PROMPTS = [[3, 7, 9, 11, 4], [5, 6, 2], [8, 8, 8, 8]]


def make_items(count: int, variant: str = "prize", prefix: str = "w150 w151 ") -> list[Item]:
    """Items of different lengths with multi-token options; twins (``no_distractor``) drop the prefix."""
    items = []
    for i in range(count):
        body = " ".join(f"w{10 + (7 * i + 3 * j) % 120}" for j in range(2 + i % 4))
        prompt = (prefix if variant == "prize" else "") + body
        items.append(
            Item(f"item{i}", "toy", prompt, " w1 w5", " w2", (" w1 w5", " w2", " w3 w4 w6"), variant)
        )
    return items


@pytest.fixture(scope="module", params=["gpt2", "neox", "llama"])
def pair(request, tokenizer):
    """The same random model behind each backend (the bridge rewires the model it wraps: two copies)."""
    hf_model = tiny_hf_model(request.param, seed=4)
    nnsight = from_hf_model(
        copy.deepcopy(hf_model), tokenizer, name=f"tiny-{request.param}", backend="nnsight"
    )
    return from_hf_model(hf_model, tokenizer, name=f"tiny-{request.param}"), nnsight


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    return right_padded(PROMPTS)


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, atol=TOLERANCE, rtol=0)


def test_sizes_weights_and_readout_agree(pair):
    bridge, nnsight = pair
    assert (nnsight.n_layers, nnsight.n_heads, nnsight.d_model, nnsight.n_ctx) == (
        bridge.n_layers,
        bridge.n_heads,
        bridge.d_model,
        bridge.n_ctx,
    )
    assert nnsight.describe()["backend"] == "nnsight" and bridge.describe()["backend"] == "bridge"
    _close(nnsight.head_output_weights, bridge.head_output_weights)
    _close(nnsight.unembedding_weights, bridge.unembedding_weights)
    input_ids, attention_mask = _batch()
    rows, positions = torch.tensor([0, 1, 2, 0]), torch.tensor([4, 2, 3, 0])
    with torch.inference_mode():
        _close(nnsight.logits(input_ids, attention_mask), bridge.logits(input_ids, attention_mask))
        resid = bridge.residuals_at(input_ids, attention_mask, [0, 2, 3], rows, positions)
        _close(nnsight.residuals_at(input_ids, attention_mask, [0, 2, 3], rows, positions), resid)
        targets = torch.tensor([5, 6, 7, 8])
        _close(nnsight.log_probs(resid, targets), bridge.log_probs(resid, targets))
        _close(
            nnsight.unembed(nnsight.apply_final_norm(resid)), bridge.unembed(bridge.apply_final_norm(resid))
        )


def test_the_reader_stops_after_the_last_layer(pair):
    _, nnsight = pair
    input_ids, attention_mask = _batch()
    calls = []
    handle = nnsight.blocks[-1].register_forward_hook(lambda *args: calls.append(1))
    try:
        nnsight.residuals_at(input_ids, attention_mask, [1], torch.tensor([0]), torch.tensor([1]))
    finally:
        handle.remove()
    assert calls == []


def test_every_hook_point_reads_and_replaces_the_same_values(pair):
    bridge, nnsight = pair
    names = sorted(bridge.hook_points() & nnsight.hook_points())
    assert nnsight.hook_points() <= bridge.hook_points() and len(names) == 3 * 3 + 4 + 1
    input_ids, attention_mask = _batch()
    caches: list[dict[str, torch.Tensor]] = [{}, {}]
    with torch.inference_mode():
        for model, cache in zip(pair, caches):
            keep = [(n, lambda a, hook, n=n, cache=cache: cache.__setitem__(n, a.clone())) for n in names]
            model.run_with_hooks(input_ids, attention_mask, keep)
        for name in names:
            _close(caches[1][name].float(), caches[0][name].float())
        # replacements, in the order given, several on one point: a later hook sees the earlier one's
        hooks = [
            (bridge.head_hook(1), lambda a, hook: a * 0.5),
            (bridge.head_hook(1), lambda a, hook: a + 1.0),
            (bridge.mlp_out_hook(0), lambda a, hook: torch.zeros_like(a)),
            (bridge.attn_out_hook(2), lambda a, hook: a.flip(1)),
            (bridge.resid_hook(2), lambda a, hook: a * 2),
            (bridge.resid_hook(3), lambda a, hook: a - 1),
        ]
        _close(
            nnsight.run_with_hooks(input_ids, attention_mask, hooks),
            bridge.run_with_hooks(input_ids, attention_mask, hooks),
        )


def test_lens_attribution_ablation_and_patching_agree(pair):
    bridge, nnsight = pair
    items = make_items(6)
    readouts = [read_options(model, items, batch_size=4) for model in pair]
    for ours, theirs in zip(readouts[1].logprobs, readouts[0].logprobs):
        _close(ours, theirs)
    tables = [attribute(model, items, batch_size=4) for model in pair]
    assert (tables[1]["attribution"] - tables[0]["attribution"]).abs().max() <= TOLERANCE
    prompts = [encode_prompts(items, model) for model in pair]
    components = [*all_heads(bridge)[:3], *all_mlps(bridge)[:1]]
    ablated = [ablate(model, p, components, "mean", batch_size=4) for model, p in zip(pair, prompts)]
    for column in ("log_odds_clean", "log_odds_ablated"):
        assert (ablated[1][column] - ablated[0][column]).abs().max() <= TOLERANCE
    twins = make_items(6, "no_distractor")
    patched = [patch(model, pair_items(model, items, twins)[0], "answer", heads=True) for model in pair]
    assert (patched[1]["log_odds_patched"] - patched[0]["log_odds_patched"]).abs().max() <= TOLERANCE


def test_generate_is_plain_transformers_greedy_decoding(tokenizer):
    """With the key/value cache on (the bridge's generate reads no cache under transformers 5.x on
    GPT-2 and Llama, so the reference here is plain transformers)."""
    hf_model = tiny_hf_model("llama", seed=4)
    nnsight = from_hf_model(copy.deepcopy(hf_model), tokenizer, backend="nnsight")
    prompt = torch.tensor([PROMPTS[0], [5, 6, 2, 8, 8]])
    options = {"max_new_tokens": 4, "do_sample": False, "pad_token_id": 1}
    expected = hf_model.generate(prompt, attention_mask=torch.ones_like(prompt), **options)
    assert nnsight.generate(prompt, torch.ones_like(prompt), **options).tolist() == expected.tolist()


def test_local_simulation_of_a_remote_request_gives_the_same_numbers(pair):
    """``remote="local"``: each trace is serialized as an NDIF request, deserialized with probes
    hidden (as on the server) and run; the readout modules are fetched through such a trace."""
    bridge, nnsight = pair
    simulated = copy.copy(nnsight)
    simulated.backend = copy.copy(nnsight.backend)
    simulated.backend._fetched = {}
    simulated.backend.remote = "local"
    items = make_items(3)
    with torch.inference_mode():
        for ours, theirs in zip(
            read_options(simulated, items).logprobs, read_options(bridge, items).logprobs
        ):
            _close(ours, theirs)
        hooks = [(bridge.head_hook(0), lambda a, hook: a * 0.0)]
        input_ids, attention_mask = _batch()
        _close(
            simulated.run_with_hooks(input_ids, attention_mask, hooks),
            bridge.run_with_hooks(input_ids, attention_mask, hooks),
        )
    assert set(simulated.backend._fetched) >= {"readout"}
    _close(simulated.unembedding_weights, bridge.unembedding_weights)


def test_remote_requests_carry_the_model_key_and_the_api_key(pair, monkeypatch):
    """``--remote``: nnsight builds an NDIF request for the hub id with NDIF_API_KEY; here the
    request is serialized as for the server and run by nnsight's local execution instead."""
    import nnsight.modeling.huggingface as hf_wrapper
    from nnsight import CONFIG
    from nnsight.intervention.backends.local import LocalSimulationBackend
    from nnsight.intervention.backends.remote import RemoteBackend
    from nnsight.schema.request import RequestModel

    from probes.model.nnsight.remote import api_key

    bridge, nnsight = pair
    monkeypatch.setattr(CONFIG.API, "APIKEY", None)
    monkeypatch.delenv("NDIF_API_KEY", raising=False)
    with pytest.raises(ProbesError, match="NDIF_API_KEY"):
        api_key()
    monkeypatch.setenv("NDIF_API_KEY", "key-from-the-environment")
    assert api_key() == "key-from-the-environment"
    backend = copy.copy(nnsight.backend)
    backend._fetched, backend.remote = {}, True
    monkeypatch.setattr(backend.model, "repo_id", "EleutherAI/pythia-14m")
    monkeypatch.setitem(hf_wrapper._ID_CACHE, "EleutherAI/pythia-14m", "EleutherAI/pythia-14m")
    sent = []

    def request(self, request: RequestModel, tracer):
        blob = self._serialize(tracer)  # what would be POSTed
        sent.append((request.model_key, self.api_key, self.host, len(blob)))
        LocalSimulationBackend(backend.model)(tracer)  # the server's part, run here

    monkeypatch.setattr(RemoteBackend, "request", request)
    input_ids, attention_mask = _batch()
    rows, positions = torch.tensor([0, 2]), torch.tensor([4, 3])
    with torch.inference_mode(), backend.residual_reader([1, 3]) as reader:
        resid = reader.run(input_ids, attention_mask, rows, positions)
    _close(resid, bridge.residuals_at(input_ids, attention_mask, [1, 3], rows, positions))
    key, key_sent, host, size = sent[-1]
    assert '"repo_id": "EleutherAI/pythia-14m"' in key and "TransformersModel" in key
    assert key_sent == "key-from-the-environment" and host == CONFIG.API.HOST and size > 0


def test_remote_is_refused_without_nnsight_or_for_local_files(tmp_path):
    with pytest.raises(ProbesError, match="--backend nnsight"):
        load_model("organism:4x96", remote=True)
    with pytest.raises(ProbesError, match="hub id"):
        load_model("organism:4x96", backend="nnsight", remote=True)


def test_probes_run_gives_the_default_log_odds_at_every_layer_on_the_built_in_ladder(tmp_path, capsys):
    from probes.cli.main import main
    from probes.store.store import Store

    common = ["run", "--models", "organism:4x96", "--variants", "prize", "--n-items", "12", "--no-progress"]
    stores = []
    for backend in ("bridge", "nnsight"):
        out = tmp_path / backend
        assert main([*common, "--backend", backend, "--out", str(out), "--no-report"]) == 0
        stores.append(Store(out).read())
    capsys.readouterr()
    key = ["task", "variant", "item_id", "layer"]
    both = stores[0].merge(stores[1], on=key, suffixes=("_bridge", "_nnsight"))
    assert len(both) == len(stores[0]) == 12 * 5 and sorted(both["layer"].unique()) == [0, 1, 2, 3, 4]
    assert (both["log_odds_bridge"] - both["log_odds_nnsight"]).abs().max() <= TOLERANCE
