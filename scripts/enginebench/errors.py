"""The one error type a CLI turns into a single clear line (no traceback)."""


class EngineBenchError(Exception):
    """A failure whose message names the cause and, where there is one, the fix."""
