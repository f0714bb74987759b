"""A check shared by the tests of the lens's pass plans (probes.lenses.passes.plan)."""

from __future__ import annotations


def assert_every_token_read_once(batches, options) -> None:
    """Every token of every option of every item is read exactly once, as its own target."""
    reads = [r for b in batches for p in [b.prompts, *b.continuations] for r in p.reads]
    assert sorted((r.item, r.option, r.token, r.target) for r in reads) == sorted(
        (i, o, t, target)
        for i, item_options in enumerate(options)
        for o, ids in enumerate(item_options)
        for t, target in enumerate(ids)
    )
