"""Domain exceptions: every message says what is wrong and what to do about it."""


class DerError(Exception):
    """Base class for errors a user can act on (shown without a traceback by the CLI)."""


class ConfigError(DerError):
    """A setting is invalid; raised before any expert is called."""


class DataError(DerError):
    """A dataset row or file cannot be used; the message names the row or file."""


class ExpertUnavailable(DerError):
    """An expert's server or model cannot be reached at preflight."""


class WarehouseError(DerError):
    """The warehouse is missing, empty or inconsistent for the requested work."""
