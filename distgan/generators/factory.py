"""Kind `python`: `--generator.target module:function` or `path/to/file.py:function`, a factory called as
`function(num_classes=K, device=device)` that returns an object following the contract (contract.py).

The identity is the sha256 of the file that defines the function: code it imports, and weights it loads, are
not covered; a factory that loads weights can take them from a path its file names.
"""

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from distgan.errors import ConfigError
from distgan.generators.registry import GENERATORS, BuildRequest, Built, refuse_unused
from distgan.runtime.hashing import sha256_of

TARGET_FORM = "module:function or path/to/file.py:function"


def split_target(target: str | None) -> tuple[str, str]:
    """(module or file, function) of a target; ConfigError naming the expected form otherwise."""
    if not target or ":" not in target:
        raise ConfigError(f"--generator.target must be {TARGET_FORM} (got {target!r})")
    where, _, function = target.rpartition(":")
    if not where or not function.isidentifier():
        raise ConfigError(f"--generator.target must be {TARGET_FORM} (got {target!r})")
    return where, function


def import_file(file: Path) -> ModuleType:
    """Import a .py file under a name made from its path (unique per file), registered in sys.modules so that
    dataclasses and pickling inside it work."""
    if not file.is_file():
        raise ConfigError(f"--generator.target: {file} is not a file")
    name = f"distgan_user_generator_{hashlib.sha256(str(file.resolve()).encode()).hexdigest()[:16]}"
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def import_module(name: str) -> ModuleType:
    """Import a module by name; ConfigError when it (not something it imports) cannot be found."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        missing = err.name is not None and (name == err.name or name.startswith(err.name + "."))
        if missing:  # the module itself or a parent package, not a module it imports
            raise ConfigError(f"--generator.target: no module named {name!r} on the Python path") from None
        raise


def source_of(module: ModuleType, target: str) -> tuple[str, str]:
    """(sha256, what it covers) of the module's source file, or of the target's name if it has no file."""
    file = getattr(module, "__file__", None)
    if file is not None and Path(file).is_file():
        return sha256_of(Path(file)), "source file"
    return hashlib.sha256(target.encode()).hexdigest(), "target name"


@GENERATORS.register("python")
def build_python(request: BuildRequest) -> Built:
    """The object `function(num_classes=K, device=device)` returns."""
    refuse_unused("python", "--generator.weights", request.weights)
    where, function_name = split_target(request.target)
    is_file = where.endswith(".py") or "/" in where
    module = import_file(Path(where)) if is_file else import_module(where)
    factory = getattr(module, function_name, None)
    if factory is None:
        raise ConfigError(f"--generator.target: {where} has no function {function_name!r}")
    if not callable(factory):
        raise ConfigError(f"--generator.target: {where}:{function_name} is a {type(factory).__name__}, not callable")
    sha256, covers = source_of(module, request.target)
    return Built(factory(num_classes=request.num_classes, device=request.device), sha256, covers)
