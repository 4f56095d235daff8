"""Configs: the file format (:mod:`.schema`), expanding it into layers (:mod:`.expand`), reading files (:mod:`.load`)."""

from .consent import PluginConsentError, check_consent, load_config_plugins, pending_plugins
from .expand import Config, Layer, resolve_algorithms
from .load import config_folders, default_config_text, dump_config, find_config, load_config, parse_config
from .schema import ConfigError

__all__ = [
    "Config", "ConfigError", "Layer", "config_folders", "default_config_text", "dump_config", "find_config", "load_config",
    "parse_config", "resolve_algorithms",
    "PluginConsentError", "check_consent", "load_config_plugins", "pending_plugins",
]
