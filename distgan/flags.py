"""Config fields as command-line flags: one `--path.to-field` per leaf field, its help the comment beside the field.

CLI > file > recipe: a flag left out keeps the config's value.
"""

import dataclasses
import inspect
import io
import tokenize
import types
import typing

from distgan.errors import ConfigError


def _convert(value: object, hint: object, flag: str) -> object:
    """Convert a CLI string or YAML value to a field's declared type."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() == "none"):
            return None
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    if typing.get_origin(hint) is tuple:
        items = value.split(",") if isinstance(value, str) else list(value)
        return tuple(_convert(item, typing.get_args(hint)[0], flag) for item in items if item != "")
    if hint is bool and isinstance(value, str):
        if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ConfigError(f"--{flag} must be true or false (got {value!r})")
        return value.lower() in ("true", "1", "yes")
    try:
        return hint(value)
    except (TypeError, ValueError):
        raise ConfigError(f"--{flag} must be of type {hint.__name__} (got {value!r})") from None


def with_overrides(cfg: object, overrides: dict[str, object], prefix: str = "") -> object:
    """A copy of cfg with {'gan.lr-d': '1e-4', ...} applied (validated again); unknown keys are errors."""
    hints = typing.get_type_hints(type(cfg))
    known = {f.name.replace("_", "-"): f.name for f in dataclasses.fields(cfg)}
    nested: dict[str, dict[str, object]] = {}
    changes: dict[str, object] = {}
    for key, value in overrides.items():
        head, _, rest = key.replace("_", "-").partition(".")
        if head not in known:
            raise ConfigError(f"unknown config key {prefix + key!r}; known: {sorted(known)}")
        name = known[head]
        if dataclasses.is_dataclass(hints[name]):
            if rest:
                nested.setdefault(name, {})[rest] = value
            elif isinstance(value, dict):
                nested.setdefault(name, {}).update(value)
            else:
                raise ConfigError(f"config key {prefix + key!r} is a section; give its fields")
        else:
            changes[name] = _convert(value, hints[name], prefix + head)
    for name, sub in nested.items():
        changes[name] = with_overrides(getattr(cfg, name), sub, prefix + name.replace("_", "-") + ".")
    return dataclasses.replace(cfg, **changes)


def flag_hints(cls: type, prefix: str = "") -> dict[str, object]:
    """Every leaf field of a config tree as {'gan.lr-d': type}: the CLI's flags."""
    flags: dict[str, object] = {}
    for f in dataclasses.fields(cls):
        hint = typing.get_type_hints(cls)[f.name]
        name = prefix + f.name.replace("_", "-")
        if dataclasses.is_dataclass(hint):
            flags.update(flag_hints(hint, name + "."))
        else:
            flags[name] = hint
    return flags


def field_comments(cls: type) -> dict[str, str]:
    """{field name: the comment on its line, else the comment lines just above it} of a config dataclass."""
    lines = inspect.getsource(cls).splitlines()
    comments = {
        token.start[0]: token.string.lstrip("#").strip()
        for token in tokenize.generate_tokens(io.StringIO("\n".join(lines)).readline)
        if token.type == tokenize.COMMENT
    }
    found = {}
    for number, line in enumerate(lines, start=1):
        name = line.strip().partition(":")[0]
        if name not in {f.name for f in dataclasses.fields(cls)} or name in found:
            continue
        above = []
        while number - 1 - len(above) in comments and lines[number - 2 - len(above)].strip().startswith("#"):
            above.insert(0, comments[number - 1 - len(above)])
        found[name] = comments.get(number) or " ".join(above)
    return found


def add_flags(parser, cls: type, prefix: str = "") -> None:
    """One `--path.to-field` flag per leaf field of a config class (default None: keep the config's)."""
    for flag, hint in flag_hints(cls).items():
        owner = cls
        *sections, leaf = flag.replace("-", "_").split(".")
        for section in sections:
            owner = typing.get_type_hints(owner)[section]
        declared = next(f for f in dataclasses.fields(owner) if f.name == leaf).default  # as written, not resolved
        comment = field_comments(owner)[leaf].replace("%", "%%")  # argparse formats help with %
        metavar = getattr(hint, "__name__", "VALUE").upper()
        help_text = f"{comment} (default: {declared})".lstrip()
        parser.add_argument(f"--{prefix}{flag}", dest=prefix + flag, metavar=metavar, help=help_text)


def apply_flags(cfg, args, prefix: str = ""):
    """cfg with every flag of `add_flags(parser, type(cfg), prefix)` that the user gave."""
    given = {
        key[len(prefix) :]: value for key, value in vars(args).items() if key.startswith(prefix) and value is not None
    }
    return with_overrides(cfg, {key: value for key, value in given.items() if key in flag_hints(type(cfg))})
