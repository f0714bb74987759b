"""Pure checks behind the store's and the loaders' refusals: which files are ours, what a config costs."""

from __future__ import annotations

import json
import os
import time

import pytest
import torch
from transformers import GPT2Config

from probes.model import memory
from probes.store import claims
from probes.store.store import Store, temporary_owner

HEX = "0123456789abcdef" * 2


@pytest.mark.parametrize(
    ("name", "ours"),
    [
        (f".prize~host-1~123~{HEX}.tmp", True),
        (f".prize.123.{HEX}.tmp", False),  # the naming before this version: no longer ours
        (".swap.tmp", False),
        (f".prize~host~x~{HEX}.tmp", False),
        (f".prize~host~123~{HEX[:31]}.tmp", False),
        (f"prize~host~123~{HEX}.tmp", False),
        (f".prize~host~123~{HEX.upper()}.tmp", False),
    ],
)
def test_temporary_files_are_ours_only_by_their_exact_naming(tmp_path, name, ours):
    assert (temporary_owner(tmp_path / name) is not None) == ours


@pytest.mark.parametrize(
    ("name", "text", "ours"),
    [
        (".prize.parquet.lock", json.dumps({"host": "h", "pid": 1, "started": "5", "claimed": "t"}), True),
        (".prize.parquet.lock", json.dumps({"host": "h", "pid": 1}), True),
        (".prize.parquet.lock", "", True),  # its writer died between creating and filling it
        (".prize.parquet.lock", "x", False),
        (".prize.parquet.lock", json.dumps({"host": "h", "pid": "1"}), False),
        (".prize.parquet.lock", json.dumps({"host": "h", "pid": 1, "editor": "vim"}), False),
        (".editor.lock", "", False),
        (".parquet.lock", "", False),
    ],
)
def test_locks_are_ours_only_by_name_and_record(tmp_path, name, text, ours):
    path = tmp_path / name
    path.write_text(text)
    assert claims.is_our_lock(path) == ours


def test_leftovers_are_looked_for_only_where_the_store_writes(tmp_path):
    dead = f"~{claims.HOST}~999999999~{HEX}.tmp"
    mine = [tmp_path / "shards" / "logit" / "m" / f".prize{dead}", tmp_path / f".store{dead}"]
    theirs = [tmp_path / "notes" / f".x{dead}", tmp_path / "notes" / "deep" / ".y.parquet.lock"]
    for path in mine + theirs:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
        os.utime(path, (time.time() - 7200,) * 2)
    assert sorted(path for path, _ in Store(tmp_path).leftovers()) == sorted(mine)


def test_a_config_costs_its_parameters_times_the_dtype():
    config = GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=202, n_positions=64)
    expected = sum(p.numel() for p in torch.nn.Module.parameters(_built(config)))
    assert memory.model_bytes(config, torch.float32) == 4 * expected
    assert memory.model_bytes(config, torch.bfloat16) == 2 * expected
    huge = GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=2_000_000_000, n_positions=64)
    assert memory.model_bytes(huge, torch.float32) > 2e9 * 32 * 4  # counted on meta, not allocated


def _built(config):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_config(config)


def test_check_fits_compares_with_the_free_memory(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda device: 10 * 2**30)
    memory.check_fits(8 * 2**30, "cpu", "the model", "config.json")
    with pytest.raises(
        memory.MemoryCheckError, match=r"needs about 9.0 GiB \(from config.json\), but cpu has 10.0"
    ):
        memory.check_fits(9 * 2**30, "cpu", "the model", "config.json")  # with the overhead: 10.8 GiB
    monkeypatch.setattr(memory, "available_bytes", lambda device: None)
    memory.check_fits(10**15, "mps", "the model", "config.json")  # unknown free memory: not refused
