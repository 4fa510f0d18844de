"""The provider kind registry: one row per kind of LLM provider ReasonKit can build.

A kind used to be spread over nine files in five packages (the provider ladder, the config `kind`
values, the environment variables, the health endpoints, the `rk mcp-config` placeholders, the SDK
logger names, the local-model notice, ...), so adding one meant finding them all. Now every place
that needs to know about kinds reads this table instead:

- config (`config/llm.py`, `config/loading.py`): the `kind` values and the key / base URL variables;
- providers (`providers/stack.py`): the class, the default model and the default endpoint;
- `/health` (`server/http/health.py`): the endpoint to probe, or the in-process check;
- the CLI: `rk mcp-config` key placeholders and the `--provider` help texts;
- logging (`observability/logging.py`): the SDK loggers routed through our sinks;
- the run service: the notice said when a run falls back to a kind nobody chose.

It is data only, at the base layer (config, layer 1, must read it; the provider modules, layer 3,
must not be imported to read it): classes are named as `module:attribute` strings and imported on
first use, so no SDK loads early. A new kind is one module under `reasonkit/providers/` plus one row
in `KINDS`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CLIENT_PRESETS",
    "KINDS",
    "ProviderKind",
    "client_setups",
    "env_vars",
    "kind_names",
    "names_help",
    "notice",
    "sdk_loggers",
    "setup_vars",
    "wire_formats",
]


@dataclass(frozen=True)
class ProviderKind:
    """One kind of provider. `name` is also the provider name that selects it (`--provider`,
    `LLM_DEFAULT_PROVIDER`) and the `[llm.providers.<name>]` table its variables fill in."""

    name: str
    title: str  # as prose names it ("OpenAI")
    provider: str  # "module:attribute": the Provider class (or, in process, its builder), imported late
    # A wire format: `[llm.providers.<any name>] kind = "<name>"` selects this row's class.
    wire_format: bool = False
    default_model: str | None = None
    key_env: str | None = None  # the API key variable (None: keyless)
    base_url_env: str | None = None  # the base URL variable
    base_url_alone: bool = False  # a base URL without a key configures it (servers that need no key)
    endpoint: str | None = None  # the default base URL: given to the client, probed by /health
    loggers: tuple[str, ...] = ()  # the SDK's stdlib loggers
    # Lines of the "no provider configured" help: (what to set, what it is for).
    setup: tuple[tuple[str, str], ...] = ()
    # In process (no endpoint): `available` ("module:function", no arguments) says whether it can
    # run; `extra` is the pip extra that installs what it `needs`; `description` is what /health
    # says when it can run.
    in_process: bool = False
    available: str | None = None
    extra: str | None = None
    needs: str = ""
    description: str = ""
    # Said once when a run uses this kind without the user choosing it ({model}, {setup} filled in).
    notice: str | None = None
    # Its pace, for the time estimates in the tool descriptions and the server's default deadline
    # (reasonkit/server/mcp/estimates.py): seconds one model call takes (fast, slow), and whether
    # calls run one at a time (`serial`: an in-process model on one context; a run's time is then
    # the sum of its calls, not of its rounds of parallel calls).
    call_secs: tuple[float, float] = (5.0, 15.0)
    serial: bool = False

    @property
    def keyless(self) -> bool:
        return self.key_env is None

    def key_placeholder(self) -> dict[str, str]:
        """The environment `rk mcp-config` writes for this kind (empty when it has no key)."""
        return {self.key_env: f"<your {self.title} API key>"} if self.key_env else {}

    def client_env(self) -> dict[str, str]:
        """What `rk mcp-config --provider <name>` writes: the key placeholder, or for an in-process
        kind the explicit choice of it (a key in the server's config file would win otherwise)."""
        return {"LLM_DEFAULT_PROVIDER": self.name} if self.in_process else self.key_placeholder()


def _rows(*rows: ProviderKind) -> dict[str, ProviderKind]:
    return {row.name: row for row in rows}


# Order matters: it is the order a provider is picked in when none is named (the first configured
# one), and the order of the variables in the help texts and the docs.
KINDS: dict[str, ProviderKind] = _rows(
    ProviderKind(
        "anthropic",
        "Anthropic",
        "reasonkit.providers.anthropic:AnthropicProvider",
        wire_format=True,
        default_model="claude-sonnet-4-6",
        key_env="ANTHROPIC_API_KEY",
        base_url_env="ANTHROPIC_BASE_URL",
        endpoint="https://api.anthropic.com",
        loggers=("anthropic",),
        setup=(("ANTHROPIC_API_KEY=...", "Anthropic; ANTHROPIC_BASE_URL for a compatible server"),),
    ),
    ProviderKind(
        "openai",
        "OpenAI",
        "reasonkit.providers.openai_compat:OpenAIProvider",
        wire_format=True,
        default_model="gpt-4.1-mini",
        key_env="OPENAI_API_KEY",
        base_url_env="OPENAI_BASE_URL",
        base_url_alone=True,
        endpoint="https://api.openai.com/v1",
        loggers=("openai",),
        setup=(
            ("OPENAI_API_KEY=...", "OpenAI"),
            (
                "OPENAI_BASE_URL=http://host/v1",
                "any OpenAI-compatible server: Ollama, vLLM, llama.cpp; key optional",
            ),
        ),
    ),
    ProviderKind(
        "openrouter",
        "OpenRouter",
        "reasonkit.providers.openai_compat:OpenAIProvider",
        default_model="anthropic/claude-sonnet-4.6",
        key_env="OPENROUTER_API_KEY",
        endpoint="https://openrouter.ai/api/v1",
        loggers=("openai",),
        setup=(("OPENROUTER_API_KEY=...", "OpenRouter"),),
    ),
    ProviderKind(
        "local",
        "the embedded local model",
        "reasonkit.providers.local:build_local_provider",
        default_model="SmolLM2-135M-Instruct",
        in_process=True,
        available="reasonkit.providers.local:local_available",
        extra="local",
        needs="llama-cpp-python and a model",
        description="embedded local model",
        notice=(
            "no LLM provider is configured, so ReasonKit runs the embedded local model ({model}). "
            "A model this small is for trying ReasonKit out: expect shallow answers and low confidence. "
            "For real work set {setup} (see docs/local-models.md and docs/configuration.md)."
        ),
        # SmolLM2-135M on 2 CPU cores (docs/local-models.md, "Speed"): about 6 s a call on an idle
        # machine, 11-16 s while other work shares the cores, and 20-80 s a call with the cores 5x
        # oversubscribed (load 10: bedrock's first call took 79 s, its second 20 s and on); the slow
        # end is 60 s, since a deadline only caps the wait and a cut run is worth little.
        call_secs=(6.0, 60.0),
        serial=True,
    ),
)

# `rk mcp-config --provider` setups that are not kinds of their own: a kind pointed at a particular
# server (Ollama speaks the `openai` wire format and needs no key, but a model name).
CLIENT_PRESETS: dict[str, dict[str, str]] = {
    "ollama": {"OPENAI_BASE_URL": "http://127.0.0.1:11434/v1", "LLM_DEFAULT_MODEL": "<model, e.g. llama3.1>"},
}


def kind_names(*, in_process: bool = True) -> list[str]:
    """The kinds' names in registry order (without the in-process ones when `in_process` is False)."""
    return [row.name for row in KINDS.values() if in_process or not row.in_process]


def names_help(*, in_process: bool = True, extra: tuple[str, ...] = ()) -> str:
    """The `--provider` help text: the kinds (and `extra` names), "or a [llm.providers] name"."""
    return ", ".join([*kind_names(in_process=in_process), *extra]) + ", or a [llm.providers] name."


def wire_formats() -> tuple[str, ...]:
    """The values `[llm.providers.<name>] kind` accepts."""
    return tuple(row.name for row in KINDS.values() if row.wire_format)


def env_vars() -> dict[str, str]:
    """Environment variable -> settings key, for every kind: the keys first, then the base URLs."""
    keys = {row.key_env: f"llm.providers.{row.name}.api_key" for row in KINDS.values() if row.key_env}
    bases = {
        row.base_url_env: f"llm.providers.{row.name}.api_base" for row in KINDS.values() if row.base_url_env
    }
    return {**keys, **bases}


def setup_vars() -> str:
    """The variables that configure a provider, as prose: "A_KEY, B_KEY or C_BASE_URL"."""
    names = [row.key_env for row in KINDS.values() if row.key_env]
    names += [row.base_url_env for row in KINDS.values() if row.base_url_alone and row.base_url_env]
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else "".join(names)


def notice(name: str, model: str) -> str | None:
    """What a run on kind `name` says when nobody chose it (None: nothing to say)."""
    row = KINDS.get(name)
    if row is None or row.notice is None:
        return None
    return row.notice.format(model=model, setup=setup_vars())


def sdk_loggers() -> list[str]:
    """The SDKs' stdlib logger names, each once."""
    return list(dict.fromkeys(name for row in KINDS.values() for name in row.loggers))


def client_setups() -> dict[str, dict[str, str]]:
    """`rk mcp-config --provider` name -> the environment it writes: each kind with a key or run in
    process, then the presets."""
    setups = {row.name: row.client_env() for row in KINDS.values() if row.key_env or row.in_process}
    return {**setups, **CLIENT_PRESETS}
