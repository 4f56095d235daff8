"""Configs: a YAML file -> a validated, expanded sweep (see :mod:`.schema`)."""

from .schema import (
    BUILTIN_DEFAULTS, LAYER_FIELDS, Config, ConfigError, ConfigModel, Layer, LayerFields, config_folders,
    default_config_text, dump_config, find_config, load_config, parse_config, resolve_algorithms,
)

__all__ = [
    "BUILTIN_DEFAULTS", "Config", "ConfigError", "ConfigModel", "LAYER_FIELDS", "Layer", "LayerFields",
    "config_folders", "default_config_text", "dump_config", "find_config", "load_config", "parse_config",
    "resolve_algorithms",
]
