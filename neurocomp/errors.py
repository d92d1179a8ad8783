"""User-facing errors. Each carries one line naming the file/field and what is allowed; the CLI
prints it and exits 2 (``EXIT_USER_ERROR``)."""

EXIT_USER_ERROR = 2


class NeurocompError(Exception):
    """A problem with what the user gave us (spec, weights, data, target) — exit code 2."""

    exit_code = EXIT_USER_ERROR


class SpecError(NeurocompError):
    """model.yaml is malformed or names something that does not exist."""

    def __init__(self, file, key: str, message: str):
        self.file, self.key, self.message = str(file), key, message
        where = f"{self.file}: {key}: " if key else f"{self.file}: "
        super().__init__(where + message)


class FrontendError(NeurocompError):
    """The source model contains something we cannot map (names the module/object)."""


class QuantizationError(NeurocompError):
    """A layer cannot be represented in the target's fixed point."""


class TargetError(NeurocompError):
    """Unknown target, bad descriptor, or a target whose packages/hardware are missing."""
