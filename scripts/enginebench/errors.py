"""The one error type a CLI turns into a single clear line (no traceback)."""


class EngineBenchError(Exception):
    """A failure whose message names the cause and, where there is one, the fix."""


class StageFailure(EngineBenchError):
    """A deterministic refusal (e.g. the converter does not support the architecture).

    The stage records it as a failure manifest instead of an artifact, so that the rest of the
    report still renders and lists the failure with its reason.
    """


class StageUnavailable(EngineBenchError):
    """What a stage needs is not on this host (e.g. a server binary not built): recorded as status
    "unavailable" with the reason, like an engine that is not built here."""
