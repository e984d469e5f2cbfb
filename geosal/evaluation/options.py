"""How the settings of :class:`~geosal.evaluation.config.EvaluationConfig` appear on a command line.

Each field of the config carries an :class:`Option` in its ``Annotated``
metadata: its argument group and its :class:`Codec`, the way its value is
written as words (percentages ``10,30,50``, comma lists, ``0`` for None,
``--no-...`` switches). The help text is the field's pydantic ``description``.
:func:`command_line_settings` reads it all back, so ``geosal evaluate``'s
options, the parsing of its arguments and the command that reproduces a
config are generated from the config alone. Codecs only read syntax; the
values are validated by the config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel

from geosal.evaluation.paths import portable


@dataclass(frozen=True)
class Codec:
    """How one value is written on a command line.

    Attributes:
        parse: one word -> value (syntax only; argparse's ``type``); ``None`` for a switch, which takes no word.
        write: value -> the words that give it back through ``parse`` (not None; see ``none``).
        metavar: how ``--help`` names the word.
        many: the option takes one or more words, each parsed alone (the value is their tuple).
        none: the word that means None (``"0"`` for sizes and counts where 0 means "not set").
    """

    parse: Callable[[str], Any] | None
    write: Callable[[Any], list[str]]
    metavar: str = ""
    many: bool = False
    none: str | None = None

    @property
    def switch(self) -> bool:
        """A flag without a value: it sets the boolean that is not the default."""
        return self.parse is None

    def words(self, value: Any) -> list[str]:
        """The words of ``value`` (``[]`` for None without a ``none`` word, and for switches)."""
        if self.switch:
            return []
        if value is None:
            return [] if self.none is None else [self.none]
        return self.write(value)


def _fraction(text: str) -> float:
    """A percentage (``10``) or a fraction (``0.1``) -> a fraction rounded to 6 decimals (values above 1 are percentages)."""
    value = float(text)
    return round(value / 100 if value > 1 else value, 6)


def _percent(fraction: float) -> str:
    """``0.1`` -> ``"10"``; up to 1 % the fraction itself (``0.005``), which :func:`_fraction` reads back as such."""
    return f"{100 * fraction:g}" if 100 * fraction > 1 else f"{fraction:g}"


def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(word.strip() for word in text.split(",") if word.strip())


TEXT = Codec(str, lambda value: [str(value)], "TEXT")
INTEGER = Codec(int, lambda value: [str(value)], "N")
NUMBER = Codec(float, lambda value: [str(value)], "X")
PATH = Codec(Path, lambda value: [portable(value)], "PATH")
"""A path, written relative to the project (or its parent) when it lies there."""
ZERO_IS_NONE = Codec(lambda text: int(text) or None, lambda value: [str(value)], "N", none="0")
"""An integer where 0 means None ("not set": the model's size, all images, torch's default...)."""
PERCENTAGE = Codec(_fraction, lambda value: [_percent(value)], "PCT")
"""A fraction, written in percent (``2.5`` for 0.025); a word up to 1 is read as a fraction (``0.005`` = 0.5 %)."""
PERCENTAGES = Codec(lambda text: tuple(_fraction(v) for v in _comma_list(text)), lambda value: [",".join(map(_percent, value))],
                    "PCT,...")
"""Fractions, written as a comma list of percentages (``10,30,50``)."""
INTEGERS = Codec(lambda text: tuple(int(v) for v in _comma_list(text)), lambda value: [",".join(map(str, value))], "N,...")
"""A comma-separated list of integers (seeds)."""
NAMES = Codec(_comma_list, lambda value: [",".join(value)], "NAME,...")
"""Names, written as one comma list."""
WORDS = Codec(str, list, "NAME", many=True)
"""Names, written as separate words (``--protocol road deletion``)."""
SWITCH = Codec(None, lambda value: [])
"""A boolean: ``--no-NAME`` sets False where the default is True, ``--NAME`` sets True otherwise."""


@dataclass(frozen=True)
class Option:
    """Command-line metadata of one config field (in its ``Annotated[...]``).

    Attributes:
        group: the argument group in ``--help``.
        codec: how the value is written.
        flag: the option's name when not derived from the field's (``--field-name``, ``--no-field-name``).
        shown_default: how ``--help`` shows the default when its words would not read well (a long list).
    """

    group: str
    codec: Codec
    flag: str = ""
    shown_default: str = ""


@dataclass(frozen=True)
class Setting:
    """One field of a config as the command line sees it (from :func:`command_line_settings`).

    Attributes:
        name: the field's name (the argparse ``dest``).
        flag: ``--image-size``, ``--no-bf16``...
        help: the field's description, then its default (``%`` escaped for argparse).
        default: the field's default value.
        option: the field's :class:`Option`.
        metavar: how ``--help`` names the value: ``{a,b}`` for a ``Literal``, else the codec's.
    """

    name: str
    flag: str
    help: str
    default: Any
    option: Option
    metavar: str

    def words(self, value: Any) -> list[str]:
        """The words that set ``value``: the flag, then the value's (only the flag for a switch)."""
        return [self.flag, *self.option.codec.words(value)]

    def is_default(self, value: Any) -> bool:
        """``value`` is the default, or is written as the default is (paths spelt differently)."""
        if value == self.default:
            return True
        return not self.option.codec.switch and self.words(value) == self.words(self.default)


def command_line_settings(model: type[BaseModel]) -> list[Setting]:
    """The fields of ``model`` that carry an :class:`Option`, in field order."""
    settings = []
    for name, field in model.model_fields.items():
        option = next((m for m in field.metadata if isinstance(m, Option)), None)
        if option is None:
            continue
        default = field.get_default(call_default_factory=True)
        flag = option.flag or ("--no-" if option.codec.switch and default else "--") + name.replace("_", "-")
        choices = get_args(field.annotation) if get_origin(field.annotation) is Literal else ()
        if option.codec.switch:
            shown = "on" if default else "off"
        else:
            shown = option.shown_default or " ".join(option.codec.words(default))
        help_text = (field.description or "") + (f" [default: {shown}]" if shown else "")
        metavar = "{" + ",".join(map(str, choices)) + "}" if choices else option.codec.metavar
        settings.append(Setting(name, flag, help_text.replace("%", "%%"), default, option, metavar))
    return settings
