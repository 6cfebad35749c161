"""Any conditional generator, or its samples, behind one contract (docs/generators.md).

`open_generator(kind, target, weights, num_classes=..., device=...)` opens one; `checked_sample` samples it with
the contract checked. Importing the package registers the kinds below in GENERATORS.
"""

from distgan.generators import biggan, diffusers_dit, factory, gan, samples, torchscript  # noqa: F401 (each registers its kind)
from distgan.generators.contract import LoadedGenerator, checked_sample
from distgan.generators.registry import GENERATORS, Built, open_generator
from distgan.generators.samples import knob_values

__all__ = ["GENERATORS", "Built", "LoadedGenerator", "checked_sample", "knob_values", "open_generator"]
