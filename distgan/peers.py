"""Peer implementations (pytorch-fid, torch-fidelity, prdc) loaded from their installed sources, for the parity
tests and the benchmarks that compare distgan with them on the same inputs.

pytorch-fid and torch-fidelity import torchvision at module level, which cannot be imported beside torch 2.13's
CPU build (their dependencies are installed with --no-deps: see the Makefile); the functions compared with use
only numpy, scipy and torch, so their files are loaded with the unused imports satisfied by empty modules.
"""

import importlib
import importlib.util
import sys
import types
from pathlib import Path

INSTALL = "pip install --no-deps pytorch-fid==0.3.0 torch-fidelity==0.4.0 prdc==0.2 (make test does)"


class _Placeholder:
    """Stands for a name imported at module level but unused by the function under comparison."""

    def __getattr__(self, name):
        return {}


def package_dir(package: str) -> Path:
    """Where an installed peer package lives; ImportError saying how to install it otherwise."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"peer package {package!r} is not installed: {INSTALL}")
    return Path(spec.submodule_search_locations[0])


def restore_modules(saved: dict) -> None:
    """Put back the sys.modules entries that a placeholder replaced (None: there was none)."""
    for name, original in saved.items():
        if original is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = original


def load_function(package: str, relative_file: str, function: str, placeholders: tuple[str, ...]):
    """A function from a peer package's source file; `placeholders` names the modules the file imports but the
    function never touches."""
    path = package_dir(package) / relative_file
    saved = {name: sys.modules.get(name) for name in placeholders}
    try:
        for name in placeholders:
            module = types.ModuleType(name)
            module.__getattr__ = lambda attr: _Placeholder()  # any `from X import y` gets a placeholder
            sys.modules[name] = module
        module_spec = importlib.util.spec_from_file_location(f"_reference_{package}_{path.stem}", path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    finally:
        restore_modules(saved)
    return getattr(module, function)


def import_isolated(package: str, submodule: str, fakes: dict) -> types.ModuleType:
    """Import package.submodule without running the package's __init__ (it imports torchvision)."""
    saved = {name: sys.modules.get(name) for name in [package, f"{package}.{submodule}", *fakes]}
    try:
        shell = types.ModuleType(package)
        shell.__path__ = [str(package_dir(package))]
        sys.modules[package] = shell
        sys.modules.update(fakes)
        module = importlib.import_module(f"{package}.{submodule}")
    finally:
        restore_modules(saved)
    return module


def torchvision_stand_in(weights: Path) -> types.ModuleType:
    """A `torchvision` for pytorch-fid's inception.py where the real one does not import: torch-fidelity's
    identically named blocks as torchvision's Inception blocks, and its network (loading `weights`) as
    `inception_v3`, which pytorch-fid builds and then gives its FID blocks."""
    fidelity = import_isolated("torch_fidelity", "feature_extractor_inceptionv3", {})
    torchvision = types.ModuleType("torchvision")
    torchvision.__version__ = "0.21.0"
    torchvision.models = types.SimpleNamespace(
        inception=types.SimpleNamespace(
            InceptionA=fidelity.InceptionA, InceptionC=fidelity.InceptionC, InceptionE=fidelity.InceptionE_1
        ),
        inception_v3=lambda **kwargs: fidelity.FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights)
        ),
    )
    return torchvision


def pytorch_fid_inception(weights: Path, *, real_torchvision: bool = False):
    """pytorch-fid 0.3.0's `InceptionV3([3])` (pool features) in eval mode, loading `weights` in place of its
    download. Its blocks subclass torchvision's: the installed torchvision's with `real_torchvision`, else
    `torchvision_stand_in`'s."""
    import torch

    fakes = {} if real_torchvision else {"torchvision": torchvision_stand_in(weights)}
    pytorch_fid = import_isolated("pytorch_fid", "inception", fakes)
    pytorch_fid.load_state_dict_from_url = lambda url, progress=True: torch.load(weights, map_location="cpu")
    return pytorch_fid.InceptionV3([3]).eval()
