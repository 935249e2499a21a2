"""Triggers: act when a customer's context crosses a condition (see docs/triggers.md).

``document`` (the trigger model and compiling it), ``crossing`` (the pure crossing rule and
deterministic ids), ``context`` (values from a change or the providers), ``engine`` (the
host's engine: evaluation, firings, preview) and ``plugin`` (the built-in plugin that connects
the engine to the host's hooks).
"""

from .crossing import event_id, transition
from .document import (
    CompiledTrigger,
    TriggerDocument,
    TriggerValidationError,
    compile_trigger,
    trigger_schema,
)
from .engine import EVENT_TYPE, Evaluation, LoadedTrigger, PreviewTooLargeError, TriggerEngine
from .plugin import engine_for

__all__ = [
    "EVENT_TYPE",
    "CompiledTrigger",
    "Evaluation",
    "LoadedTrigger",
    "PreviewTooLargeError",
    "TriggerDocument",
    "TriggerEngine",
    "TriggerValidationError",
    "compile_trigger",
    "engine_for",
    "event_id",
    "transition",
    "trigger_schema",
]
