"""User-facing errors: each names the flag, file, key or value at fault, raised early (internals use `assert`)."""


class DistganError(Exception):
    """Base class of every error a user can cause and fix."""


class ConfigError(DistganError):
    """A configuration field or CLI flag holds a value that cannot work."""


class DataError(DistganError):
    """A dataset file, shard or manifest is missing, corrupt or inconsistent."""


class TrainingError(DistganError):
    """Training diverged (NaN or inf loss)."""


class GeneratorError(DistganError):
    """A user's generator raised, or broke its contract, while sampling."""
