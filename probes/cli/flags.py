"""Dataclass options as command-line flags, and back: one flag per field, with its help text.

Each command's options are a dataclass (:mod:`probes.jobs.options` and the commands' own subclasses);
these functions are the whole bridge between them and :mod:`argparse`. The options of the
commands that load models are added only when that command is chosen (:data:`HEAVY_OPTIONS`),
so `probes --help` never imports torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable


class ListOption(argparse.Action):
    """A list flag that may be given once: a second use is refused rather than silently dropped.

    argparse's plain ``nargs="+"`` keeps only the last use, so ``--sae A --sae B`` would read ``B``
    alone without a word; adding them up instead would surprise a script that overrides a flag.
    """

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: typing.Any,
        option_string: str | None = None,
    ) -> None:
        current = getattr(namespace, self.dest, None)
        if current is not None and current is not self.default:
            raise argparse.ArgumentError(
                self,
                f"given twice; give all its values after one {option_string} (e.g. {option_string} A B).",
            )
        setattr(namespace, self.dest, list(values))


def add_dataclass_options(parser: argparse.ArgumentParser, options_class: type) -> None:
    """One ``--option`` per dataclass field, with the field's help text and default."""
    hints = typing.get_type_hints(options_class)
    for spec in dataclasses.fields(options_class):
        flag = "--" + spec.name.replace("_", "-")
        kind = hints[spec.name]
        default = spec.default if spec.default is not dataclasses.MISSING else spec.default_factory()  # type: ignore[misc]
        help_text = f"{spec.metadata.get('help', '')} (default: {default})"
        args = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_text)
            continue
        base = (
            args[0] if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union else kind
        )
        if typing.get_origin(base) is list:
            parser.add_argument(
                flag,
                nargs="+",
                action=ListOption,
                type=typing.get_args(base)[0],
                default=default,
                help=help_text,
            )
        else:
            parser.add_argument(flag, type=base, default=default, help=help_text)


def options_from(args: argparse.Namespace, options_class: type) -> typing.Any:
    """An options dataclass filled from the parsed arguments of its command."""
    fields = {f.name for f in dataclasses.fields(options_class)}
    return options_class(**{k: v for k, v in vars(args).items() if k in fields})


def add_report_flags(parser: argparse.ArgumentParser, what: str) -> None:
    """``--report/--no-report`` (on) and ``--png/--no-png`` (off) for a command that ends with a report."""
    parser.add_argument(
        "--report",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"Write {what} into <out>/report/ at the end.",
    )
    parser.add_argument(
        "--png",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="Also write a PNG per figure (a few seconds each; `probes report STORE` writes them later).",
    )


def _run_options(parser: argparse.ArgumentParser) -> None:
    from probes.jobs.sweep import SweepOptions

    add_dataclass_options(parser, SweepOptions)
    add_report_flags(parser, "the HTML report and Markdown summary of the store")


def _ablate_options(parser: argparse.ArgumentParser) -> None:
    from probes.ablate.study import AblateOptions

    add_dataclass_options(parser, AblateOptions)
    add_report_flags(parser, "the ablation page (ablations.html, ablations.md)")


def _features_options(parser: argparse.ArgumentParser) -> None:
    from probes.features.study import FeatureOptions

    add_dataclass_options(parser, FeatureOptions)
    add_report_flags(parser, "the feature page (features.html, features.md)")


def _perplexity_options(parser: argparse.ArgumentParser) -> None:
    from probes.jobs.perplexity import PerplexityOptions

    add_dataclass_options(parser, PerplexityOptions)


#: Commands whose options come from options dataclasses in modules that import torch: their
#: options are added only when the command is chosen, so `probes --help` never imports torch.
HEAVY_OPTIONS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "run": _run_options,
    "ablate": _ablate_options,
    "features": _features_options,
    "perplexity": _perplexity_options,
}
