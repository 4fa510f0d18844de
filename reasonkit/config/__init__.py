"""Settings: built-in defaults < TOML file < environment < CLI flags.

- `reasonkit.config.schema`: the pydantic models (`Settings` and one model per table);
- `reasonkit.config.loading`: environment names (`ENV_VARS`), config file lookup, `load_settings`;
- `reasonkit.config.compat`: the deployment guide's keys and variables, mapped onto ours or explained;
- `reasonkit.config.show`: `masked_dict` / `to_toml` for `rk config show` (secrets masked);
- `reasonkit.config.reference`: `default_config_text` (`rk config init`) and `reference_markdown`
  (`rk config reference`, docs/configuration.md), both from one walk of the model.
"""

from reasonkit.config.llm import (
    CacheSettings,
    LLMSettings,
    LocalModelSettings,
    OutputMode,
    ProviderSettings,
    RateLimitSettings,
)
from reasonkit.config.loading import (
    DEFAULT_CONFIG_PATHS,
    ENV_VARS,
    OTHER_ENV_VARS,
    describe_validation_error,
    find_config_file,
    load_settings,
)
from reasonkit.config.reference import default_config_text, reference_markdown
from reasonkit.config.schema import (
    DatabaseSettings,
    EngineSettings,
    FeatureSettings,
    LoggingSettings,
    PrivacySettings,
    ProtocolSettings,
    RedisSettings,
    SecuritySettings,
    ServerSettings,
    Settings,
    StorageSettings,
    TracingSettings,
)
from reasonkit.config.show import masked_dict, to_toml

__all__ = [
    "DEFAULT_CONFIG_PATHS",
    "ENV_VARS",
    "OTHER_ENV_VARS",
    "CacheSettings",
    "DatabaseSettings",
    "EngineSettings",
    "FeatureSettings",
    "LLMSettings",
    "LocalModelSettings",
    "LoggingSettings",
    "OutputMode",
    "PrivacySettings",
    "ProtocolSettings",
    "ProviderSettings",
    "RateLimitSettings",
    "RedisSettings",
    "SecuritySettings",
    "ServerSettings",
    "Settings",
    "StorageSettings",
    "TracingSettings",
    "default_config_text",
    "describe_validation_error",
    "find_config_file",
    "load_settings",
    "masked_dict",
    "reference_markdown",
    "to_toml",
]
