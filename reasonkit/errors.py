"""The one error tree: every error ReasonKit raises on purpose derives from `ReasonKitError`.

Each class also keeps the built-in base it had before the tree existed (`ValueError`,
`RuntimeError`, `KeyError`), so `except ValueError` in user code written against earlier versions
still works. Messages are written for the user: they name the file, setting, input or provider and
say what to change; they never contain secrets.

The tree (built-in bases kept in parentheses; tests/test_errors.py compares it with the classes):

    ReasonKitError
      ConfigError (ValueError)
      TemplateError (ValueError)
      UnknownProtocolError (KeyError)
      InputError (ValueError)
        IdempotencyConflict
      JsonDepthError (ValueError)
      ProviderError
        ProviderSkipped
      NoProviderConfigured
      ModelChoiceError
      StoreError (RuntimeError)
      SecurityError (ValueError)
      IssuerUnavailable
      ServeError (RuntimeError)
      TomlFileError (ValueError)
      CalibrationError
      EvalError (ValueError)
      Busy
      SlotsTaken
      ConfirmationPending
      NotConfirmed
      GenerationStopped

A user catches `ReasonKitError` for all of them; `ConfigError`, `InputError`, `ProviderError`,
`NoProviderConfigured` and `StoreError` are the ones a caller of the public API meets
(`reasonkit.__init__` exports them).
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "Busy",
    "CalibrationError",
    "ConfigError",
    "ConfirmationPending",
    "ErrorKind",
    "EvalError",
    "GenerationStopped",
    "HALTING",
    "IdempotencyConflict",
    "InputError",
    "IssuerUnavailable",
    "JsonDepthError",
    "ModelChoiceError",
    "NotConfirmed",
    "NoProviderConfigured",
    "ProviderError",
    "ProviderSkipped",
    "RETRYABLE",
    "ReasonKitError",
    "SecurityError",
    "ServeError",
    "SlotsTaken",
    "StoreError",
    "TemplateError",
    "TomlFileError",
    "UnknownProtocolError",
]


class ReasonKitError(Exception):
    """Root of every error the package raises."""


class ConfigError(ReasonKitError, ValueError):
    """A settings problem the user can fix; the message names the file/variable and the key."""


class TemplateError(ReasonKitError, ValueError):
    """A template that cannot be parsed; `position` is a character offset."""

    def __init__(self, message: str, position: int = 0):
        super().__init__(message)
        self.position = position


class UnknownProtocolError(ReasonKitError, KeyError):
    """A protocol or profile id that is not loaded; the message lists what is."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InputError(ReasonKitError, ValueError):
    """Bad tool input (or budget): names the input and what is wrong with it."""


class JsonDepthError(ReasonKitError, ValueError):
    """JSON from outside nested deeper than reasonkit.jsonguard allows (parsing it would recurse
    past the stack)."""


ErrorKind = Literal[
    "auth",
    "bad_request",
    "not_found",
    "rate_limit",
    "server",
    "timeout",
    "connection",
    "bad_response",
    "config",
    "unsupported",  # the server rejected a request feature (an output mode); the next mode is tried
    "context_overflow",  # the prompt does not fit the model's context window
    "other",
    # raised by the resilience layer without calling the provider:
    "circuit_open",  # the provider's circuit breaker is open
    "client_rate_limit",  # our own client-side rate limit refused the call (drop / full queue)
]
RETRYABLE: frozenset[str] = frozenset({"rate_limit", "server", "timeout", "connection", "bad_response"})
# Failures of the provider as a whole (after retries and fallbacks): every later call would fail the
# same way, so a run stops at once instead of trying each remaining step (engine/budget.py).
HALTING: frozenset[str] = frozenset({"auth", "not_found", "connection", "config", "circuit_open"})


class ProviderError(ReasonKitError):
    """A provider call that failed. The message is safe to show: it never contains keys or headers."""

    def __init__(
        self,
        provider: str,
        kind: ErrorKind,
        message: str,
        status: int | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.attempts = 1  # set by with_retries when it gives up
        # context_overflow only, when the server said them: its window and the prompt's tokens
        # (the call may then be made again with the max_tokens that fit, engine/sampling.py)
        self.window: int | None = None
        self.prompt_tokens: int | None = None
        # set by the resilience layer: providers skipped or given up on before this error
        self.fallbacks: list[dict[str, str]] = []

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE


class ProviderSkipped(ProviderError):
    """A wrapper declined a call without sending it (open circuit breaker; client-side rate limit
    with strategy `fallback`): the fallback chain moves on to the next provider, noting `reason`."""

    def __init__(self, provider: str, kind: ErrorKind, message: str, reason: str):
        super().__init__(provider, kind, message)
        self.reason = reason


class NoProviderConfigured(ReasonKitError):
    """No LLM provider could be chosen; the message says what to set."""


class ModelChoiceError(ReasonKitError):
    """`rk models use` was given no usable model: a missing or non-GGUF file, an unknown package,
    or a package with several models; the message says which and what to give instead."""


class StoreError(ReasonKitError, RuntimeError):
    """The run database cannot be used (newer schema, not a database, ...)."""


class SecurityError(ReasonKitError, ValueError):
    """The HTTP server must not start with these settings; the message says how to fix it (exit 2)."""


class IssuerUnavailable(ReasonKitError):
    """The OAuth issuer's metadata or signing keys cannot be fetched now (it is down, slow or answers
    nonsense): access tokens cannot be verified, so requests get 503 until it answers again."""


class ServeError(ReasonKitError, RuntimeError):
    """The server cannot start (for example its port is taken); the message says what to change."""


class TomlFileError(ReasonKitError, ValueError):
    """A TOML file that cannot be used; the message says why (without the path)."""


class CalibrationError(ReasonKitError):
    """A calibrator file that cannot be read or makes no sense."""


class EvalError(ReasonKitError, ValueError):
    """A problem with an eval's input (dataset, output folder, options), said in one sentence."""


class Busy(ReasonKitError):
    """The gate refused a run: `reason` (capacity, queue_timeout, background_per_client,
    principal_share, draining) and a `retry_after` in whole seconds."""

    def __init__(self, message: str, reason: str, retry_after: int):
        super().__init__(message)
        self.reason = reason
        self.retry_after = retry_after


class SlotsTaken(ReasonKitError):
    """Redis says a shared count is full: `count` is `background_per_client` or `cluster`."""

    def __init__(self, count: str):
        super().__init__(f"the shared {count} count is full")
        self.count = count


class IdempotencyConflict(InputError):
    """The idempotency key was used, within its lifetime, for a call with other arguments."""


class ConfirmationPending(ReasonKitError):
    """A call over `[server] confirm_above_usd` waits for the user's answer on a 2026-07-28
    connection: the call ends with an input request (`request`, the wire `elicitation/create` to
    put in it) and the client retries with the answer (reasonkit/server/mcp/confirm.py). Not a
    failure: nothing ran and nothing is stored yet."""

    def __init__(self, message: str, request: dict[str, object]):
        super().__init__(message)
        self.request = request


class NotConfirmed(ReasonKitError):
    """A call over `[server] confirm_above_usd` was declined or cancelled by the user, or could not be
    asked about and `confirm_unsupported = "refuse"`: it did not run."""


class GenerationStopped(ReasonKitError):
    """The embedded model's worker thread stopped because its caller was cancelled: nobody reads
    the result (reasonkit/providers/local.py); never shown to a user."""
