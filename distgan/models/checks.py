"""The models layer's checks of the names a config picks from it: `--gan.arch` and `--gan.loss` registered, the
image size the architecture makes, `--classifier.arch` registered, `--sample.truncation-convention` known."""

from distgan.config import ClassifierConfig, GanConfig, SampleConfig
from distgan.errors import ConfigError
from distgan.models.classifiers import CLASSIFIERS
from distgan.models.gan import GAN_ARCHS, image_size_rule, makes_image_size
from distgan.models.gans.losses import GAN_LOSSES
from distgan.models.truncation import TRUNCATION_CONVENTIONS


def check_gan(gan: GanConfig, *, image_size: int | None = None) -> None:
    """ConfigError naming the flag unless --gan.arch and --gan.loss are registered and, given `image_size` (the
    data's, for a GAN the sweep trains on it), the architecture makes images of that size. A trial calls it on its
    GAN overrides too."""
    GAN_ARCHS.get_or_raise(gan.arch)
    GAN_LOSSES.get_or_raise(gan.loss)
    if image_size is not None and not makes_image_size(gan.arch, image_size):
        raise ConfigError(f"--data.image-size must be {image_size_rule(gan.arch)} (got {image_size})")


def check_classifier(classifier: ClassifierConfig) -> None:
    """ConfigError naming --classifier.arch and its choices unless it is registered."""
    CLASSIFIERS.get_or_raise(classifier.arch)


def check_sample(sample: SampleConfig) -> None:
    """ConfigError naming --sample.truncation-convention unless it is unset or a known convention."""
    if sample.truncation_convention not in (None, *TRUNCATION_CONVENTIONS):
        raise ConfigError(
            f"--sample.truncation-convention must be one of {list(TRUNCATION_CONVENTIONS)} "
            f"(got {sample.truncation_convention!r})"
        )
