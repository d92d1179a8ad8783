"""User-facing errors. Each carries one line naming the file/field and what is allowed; the CLI
prints it and exits 2 (``EXIT_USER_ERROR``)."""

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # the shell's convention for "stopped by SIGINT" (128 + 2)

MAX_MESSAGE = 300  # characters of one error line; longer messages are cut in the middle


def one_line(message, limit: int = MAX_MESSAGE) -> str:
    """``message`` as one short line: whitespace runs (newlines included) become one space and a
    message longer than ``limit`` keeps its head and tail (the file and key lead, the value trails)."""
    text = " ".join(str(message).split())
    if len(text) <= limit:
        return text
    head = (limit - 5) * 2 // 3
    tail = limit - 5 - head
    return f"{text[:head]} ... {text[-tail:]}" if tail > 0 else text[:limit]


def short_repr(value, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, without building a huge repr first for big
    containers (a YAML document can hold millions of elements)."""
    import reprlib
    r = reprlib.Repr()
    r.maxlevel, r.maxlist, r.maxdict, r.maxtuple, r.maxset, r.maxstring, r.maxother = 3, 6, 4, 6, 6, limit, limit
    text = r.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class NeurocompError(Exception):
    """A problem with what the user gave us (spec, weights, data, target) — exit code 2."""

    exit_code = EXIT_USER_ERROR


def printable(text) -> str:
    """``text`` with control characters (newlines, NUL, ...) written as escapes: a user's key or value
    must not break the one-line error it appears in."""
    text = str(text)
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class SpecError(NeurocompError):
    """model.yaml is malformed or names something that does not exist."""

    def __init__(self, file, key: str, message: str):
        self.file, self.key, self.message = str(file), printable(key), printable(message)
        where = f"{self.file}: {key}: " if key else f"{self.file}: "
        super().__init__(where + message)


class FrontendError(NeurocompError):
    """The source model contains something we cannot map (names the module/object)."""


class QuantizationError(NeurocompError):
    """A layer cannot be represented in the target's fixed point."""


class TargetError(NeurocompError):
    """Unknown target, bad descriptor, or a target whose packages/hardware are missing."""


class DataError(NeurocompError):
    """A dataset file (``.npz``) is unreadable or its arrays are malformed (names the file and array)."""


class BuildError(NeurocompError):
    """A build directory is missing, corrupted or unsafe to write (names the file and what is wrong)."""


class ResourceError(NeurocompError):
    """A run would need more memory than the machine has (names the spec key / option to lower)."""
