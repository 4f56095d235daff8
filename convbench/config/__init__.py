"""Configs: the file format (:mod:`.schema`), expanding it into layers (:mod:`.expand`), reading files (:mod:`.load`)."""

from .expand import Config, Layer, resolve_algorithms
from .load import default_config_text, dump_config, find_config, load_config, parse_config
from .schema import ConfigError

__all__ = [
    "Config", "ConfigError", "Layer", "default_config_text", "dump_config", "find_config", "load_config",
    "parse_config", "resolve_algorithms",
]
