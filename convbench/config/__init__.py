"""Configs: a YAML file -> a validated, expanded sweep (see :mod:`.schema`)."""

from .consent import PluginConsentError, check_consent, load_config_plugins, pending_plugins
from .schema import (
    BUILTIN_DEFAULTS, LAYER_FIELDS, Config, ConfigError, ConfigModel, Layer, LayerFields, default_config_text,
    dump_config, find_config, load_config, parse_config, resolve_algorithms,
)

__all__ = [
    "BUILTIN_DEFAULTS", "Config", "ConfigError", "ConfigModel", "LAYER_FIELDS", "Layer", "LayerFields",
    "PluginConsentError", "check_consent", "load_config_plugins", "pending_plugins",
    "default_config_text", "dump_config", "find_config", "load_config", "parse_config", "resolve_algorithms",
]
