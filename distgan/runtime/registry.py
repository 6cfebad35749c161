"""One pattern for every registry (datasets, classifiers, extractors, spaces, recipes): one dict each, whose
names say the protocol.

A registry is a dict of name → callable that refuses a second entry under a name and an entry that cannot be
called, and names the flag and its choices when asked for a name it does not hold. CLI choices and config
validation read the same dict.
"""

from collections.abc import Callable
from typing import TypeVar

from distgan.errors import ConfigError

Entry = TypeVar("Entry", bound=Callable)


class Registry(dict[str, Entry]):
    """Named callables of one kind; `flag` is the option that picks one (e.g. '--classifier.arch')."""

    def __init__(self, kind: str, flag: str):
        super().__init__()
        self.kind, self.flag = kind, flag

    def add(self, name: str, entry: Entry) -> Entry:
        """Register `entry` under `name`; ValueError on a duplicate name, TypeError on a non-callable."""
        if name in self:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        if not callable(entry):
            raise TypeError(f"{self.kind} {name!r}: must be callable (got {type(entry).__name__})")
        self[name] = entry
        return entry

    def register(self, name: str) -> Callable[[Entry], Entry]:
        """Decorator form of `add`."""
        return lambda entry: self.add(name, entry)

    def get_or_raise(self, name: str) -> Entry:
        """The entry under `name`; ConfigError naming the flag and the choices otherwise."""
        if name not in self:
            raise ConfigError(f"{self.flag} must be one of {sorted(self)} (got {name!r})")
        return self[name]
