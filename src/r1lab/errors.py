"""User-facing errors: the CLI prints these as one line, without a traceback."""


class R1LabError(Exception):
    """A problem with the user's input (config, data, paths) with a message that says what to fix."""


class ConfigError(R1LabError):
    """Unknown key, wrong type or bad value in a recipe or an override."""


class DataError(R1LabError):
    """A malformed data row or an unreadable data source."""
