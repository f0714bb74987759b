"""The synthetic world of the model organism: entities, their values and the training corpus.

Every entity is named by two tokens (a first and a last name drawn from two pools), so a
fact belongs to the pair and cannot be read off one embedding. Each entity has one value;
values come in opposite pairs (``hot``/``cold`` ...). The corpus states facts as

    ``<first> <last> is <value> .``               (plain statement)
    ``not <first> <last> is <opposite value> .``  (negated statement)

Negated statements are written only about the *negation* entities; the *held-out* entities
appear in plain statements only. Probe questions ask about held-out entities in the negated
form, so answering them needs a general rule (recall the value, then flip it) rather than
a memorised negated fact, while the distractor (plain recall) gives the opposite answer.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

#: Opposite value pairs; an entity's value is one word of one pair.
VALUE_PAIRS: tuple[tuple[str, str], ...] = (
    ("hot", "cold"),
    ("big", "small"),
    ("fast", "slow"),
    ("old", "young"),
    ("hard", "soft"),
    ("light", "dark"),
    ("wet", "dry"),
    ("loud", "quiet"),
)

#: Words with a grammatical role; no name may collide with them.
NEGATION_WORD = "not"
COPULA_WORD = "is"
DELIMITER = "."
PAD_TOKEN = "<pad>"
UNKNOWN_TOKEN = "<unk>"
END_TOKEN = "<eos>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD_TOKEN, UNKNOWN_TOKEN, END_TOKEN)

_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"


@dataclass(frozen=True)
class WorldConfig:
    """Everything that fixes the synthetic world; the same config always gives the same world."""

    #: Seed of the world (names, values, splits); independent of the training seed.
    seed: int = 0
    #: Number of entities; a multiple of the number of values keeps the values balanced.
    entities: int = 1040
    #: Size of the first-name and of the last-name token pool.
    name_pool: int = 40
    #: Share of the entities of each value that get negated statements in the corpus.
    negation_entity_share: float = 0.8
    #: Share of the mentions of a negation entity that are negated statements.
    negation_mention_share: float = 0.3
    #: Opposite value pairs.
    value_pairs: tuple[tuple[str, str], ...] = VALUE_PAIRS

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the config."""
        row = asdict(self)
        row["value_pairs"] = [list(pair) for pair in self.value_pairs]
        return row

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> WorldConfig:
        """Build a config from :meth:`to_dict` output."""
        row = dict(row)
        if "value_pairs" in row:
            row["value_pairs"] = tuple(tuple(pair) for pair in row["value_pairs"])
        return cls(**row)

    def fingerprint(self) -> str:
        """The sha256 of the config's canonical JSON."""
        return hashlib.sha256(canonical_json(self.to_dict()).encode()).hexdigest()


@dataclass(frozen=True)
class Entity:
    """One entity: its index, its two name tokens, its value and whether it is negated in training."""

    index: int
    first: str
    last: str
    value: str
    opposite: str
    negated_in_training: bool

    @property
    def name(self) -> str:
        """The entity's two-token name, e.g. ``"bak tano"``."""
        return f"{self.first} {self.last}"

    def question(self) -> str:
        """The plain statement without its value, e.g. ``"bak tano is"``."""
        return f"{self.name} {COPULA_WORD}"

    def negated_question(self) -> str:
        """The negated statement without its value, e.g. ``"not bak tano is"``."""
        return f"{NEGATION_WORD} {self.name} {COPULA_WORD}"

    def statement(self) -> str:
        """The plain statement of the entity's fact, e.g. ``"bak tano is hot"``."""
        return f"{self.question()} {self.value}"

    def negated_statement(self) -> str:
        """The negated statement of the entity's fact, e.g. ``"not bak tano is cold"``."""
        return f"{self.negated_question()} {self.opposite}"


@dataclass(frozen=True)
class World:
    """The entities of one :class:`WorldConfig`, with the corpus sampler built on them."""

    config: WorldConfig = field(default_factory=WorldConfig)

    @cached_property
    def opposites(self) -> dict[str, str]:
        """Map from each value to its opposite."""
        pairs = self.config.value_pairs
        return {**{a: b for a, b in pairs}, **{b: a for a, b in pairs}}

    @cached_property
    def values(self) -> list[str]:
        """Every value word, pair by pair."""
        return [word for pair in self.config.value_pairs for word in pair]

    @cached_property
    def first_names(self) -> list[str]:
        """The first-name tokens (consonant-vowel-consonant)."""
        pool = ["".join(p) for p in itertools.product(_CONSONANTS, _VOWELS, _CONSONANTS)]
        return self._draw_names(pool, "first")

    @cached_property
    def last_names(self) -> list[str]:
        """The last-name tokens (consonant-vowel-consonant-vowel)."""
        pool = ["".join(p) for p in itertools.product(_CONSONANTS, _VOWELS, _CONSONANTS, _VOWELS)]
        return self._draw_names(pool, "last")

    def _draw_names(self, pool: list[str], role: str) -> list[str]:
        reserved = set(self.values) | {NEGATION_WORD, COPULA_WORD}
        pool = [name for name in pool if name not in reserved]
        return sorted(random.Random(f"{self.config.seed}-{role}").sample(pool, self.config.name_pool))

    @cached_property
    def entities(self) -> list[Entity]:
        """All entities; values are balanced and so is the negation split within each value."""
        config = self.config
        if config.entities > config.name_pool**2:
            raise ValueError(
                f"{config.entities} entities need a name pool of at least "
                f"{int(config.entities**0.5) + 1}; raise name_pool."
            )
        rng = random.Random(f"{config.seed}-entities")
        names = rng.sample(list(itertools.product(self.first_names, self.last_names)), config.entities)
        values = [self.values[i % len(self.values)] for i in range(config.entities)]
        rng.shuffle(values)
        negated: list[bool] = [False] * config.entities
        for value in self.values:
            indices = [i for i, v in enumerate(values) if v == value]
            rng.shuffle(indices)
            for i in indices[: round(config.negation_entity_share * len(indices))]:
                negated[i] = True
        return [
            Entity(i, first, last, values[i], self.opposites[values[i]], negated[i])
            for i, (first, last) in enumerate(names)
        ]

    @cached_property
    def held_out(self) -> list[Entity]:
        """Entities with no negated statement in training: the probe entities."""
        return [e for e in self.entities if not e.negated_in_training]

    @cached_property
    def negation_entities(self) -> list[Entity]:
        """Entities whose mentions in training are partly negated."""
        return [e for e in self.entities if e.negated_in_training]

    def vocabulary(self) -> list[str]:
        """Every token of the world's language, special tokens first, in a fixed order."""
        words = [NEGATION_WORD, COPULA_WORD, DELIMITER, *self.values]
        return [*SPECIAL_TOKENS, *words, *self.first_names, *self.last_names]

    def sample_statement(self, rng: random.Random) -> str:
        """One corpus statement about a uniformly drawn entity (negated with the configured share)."""
        entity = self.entities[rng.randrange(len(self.entities))]
        if entity.negated_in_training and rng.random() < self.config.negation_mention_share:
            return entity.negated_statement()
        return entity.statement()

    def sample_sequence(self, rng: random.Random, length: int) -> list[str]:
        """Words of one training sequence: whole statements joined by the delimiter, cut to ``length``."""
        words: list[str] = []
        while len(words) < length:
            words.extend(self.sample_statement(rng).split())
            words.append(DELIMITER)
        return words[:length]

    def summary(self) -> dict[str, Any]:
        """Counts that describe the data mix, for the catalogue."""
        negation_entities = len(self.negation_entities)
        return {
            "entities": len(self.entities),
            "negation_entities": negation_entities,
            "held_out_entities": len(self.held_out),
            "values": len(self.values),
            "first_names": len(self.first_names),
            "last_names": len(self.last_names),
            "vocabulary": len(self.vocabulary()),
            "negated_share_of_all_mentions": round(
                negation_entities / len(self.entities) * self.config.negation_mention_share, 4
            ),
        }


def canonical_json(data: Any) -> str:
    """JSON with sorted keys and no spaces: the form that config hashes are taken over."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
