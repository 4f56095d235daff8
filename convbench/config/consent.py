"""Consent for code a config names: its ``plugins:`` load only when the user says so.

A config, or the ``config.yaml`` of a results folder, is something people
share; ``plugins:`` would turn such a file into a program that runs with the
reader's permissions. So parsing a config never imports anything
(:func:`convbench.config.load_config` only records the targets, resolved),
and this module is the one explicit step that loads them, given consent:
``allow=True`` (``--allow-config-plugins``) or the same plugin named by the
user (``--plugin``). Read-only commands (``layers``) never call it.

The sweep refuses to run while a config's plugins are not loaded in this
process (:func:`require_loaded`), so the isolated worker, which loads what
the parent names, can never be the back door.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from typing import TYPE_CHECKING, Any, Iterable

from .schema import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from .expand import Config

#: How a user allows a config's plugins, for the messages (the CLI's words).
HOW_TO_ALLOW = ("read that code, then allow it with --allow-config-plugins (or name each one with --plugin); "
                "configs and results folders from others are data until you do")


class PluginConsentError(ConfigError):
    """A config wants to load plugin code the user has not allowed; the message lists it.

    ``targets`` are the plugin targets not allowed (resolved file paths or module names).
    """

    def __init__(self, where: str, targets: list[str], how: str = HOW_TO_ALLOW):
        self.where, self.targets = where, list(targets)
        listed = ", ".join(describe_target(t) for t in targets)
        super().__init__(f"{where} wants to load plugin code that would run as you: {listed}; {how}")


def _key(target: str) -> str:
    """One spelling per plugin, to compare: a file's real path, a module's name."""
    from ..registry import looks_like_file

    return os.path.realpath(target) if looks_like_file(target) else target


def describe_target(target: str) -> str:
    """A file as its path; a module as its name and, where it can be found
    without importing anything, the file it would load."""
    from ..registry import looks_like_file

    if looks_like_file(target):
        return target
    top = target.split(".")[0]
    try:  # a top-level find_spec only searches sys.path; it executes no code
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        spec = None
    where = spec.origin if spec is not None and spec.origin else None
    return f"module {target} ({where})" if where else f"module {target} (not found)"


def pending_plugins(targets: Iterable[str]) -> list[str]:
    """Those of ``targets`` not loaded in this process (by any spelling of the same file)."""
    from ..registry import loaded_plugins

    loaded = {_key(t) for t in loaded_plugins()}
    return [t for t in targets if _key(t) not in loaded]


def check_consent(config: "Config", *, allow: bool = False, given: Iterable[str] = ()) -> None:
    """Raise :class:`PluginConsentError` listing the config's plugins that neither
    ``allow`` covers nor the user named in ``given`` (``--plugin`` targets)."""
    if allow:
        return
    named = {_key(g) for g in given}
    refused = [t for t in config.model.plugins if _key(t) not in named]
    if refused:
        raise PluginConsentError(config.path, refused)


def load_config_plugins(config: "Config", *, allow: bool = False, given: Iterable[str] = ()) -> list[str]:
    """Load the config's ``plugins:`` after :func:`check_consent`; return those loaded now.

    A plugin that fails to import is a :class:`ConfigError` naming the config.
    """
    from ..registry import PluginError, load_plugin

    check_consent(config, allow=allow, given=given)
    todo = pending_plugins(config.model.plugins)
    for target in todo:
        try:
            load_plugin(target)
        except PluginError as exc:
            raise ConfigError(f"{config.path}: field 'plugins': {exc}") from None
    return todo


def require_loaded(targets: Iterable[str], where: str) -> None:
    """Refuse to measure while plugins a run records are not loaded here: the
    worker loads what the run records, so running them would skip consent."""
    missing = pending_plugins(targets)
    if missing:
        raise PluginConsentError(
            where, missing,
            "load them first, with consent: convbench.config.load_config_plugins(config, allow=True) "
            "(the CLI's --allow-config-plugins)")


def set_aside_plugin_algorithms(config: "Config", requested: Any) -> tuple["Config", Any, list[str]]:
    """For read-only commands: what can be shown without running the config's plugins.

    Returns ``(config, algorithms, not_loaded)``: the config (without its
    baseline when only a pending plugin could register it), the algorithms to
    plan (``requested``, else the config's, minus unknown names) and the names
    set aside as "not loaded". With no pending plugin nothing is set aside, so
    a typo still fails as an unknown algorithm.
    """
    from ..registry import list_algorithms

    if not pending_plugins(config.model.plugins):
        return config, requested, []
    names = requested if requested is not None else config.model.algorithms
    if names == "all":
        names_list: list[str] = list(list_algorithms())
    elif isinstance(names, str):
        names_list = [a.strip() for a in names.split(",") if a.strip()]
    else:
        names_list = list(names)
    known = set(list_algorithms())
    baseline = config.baseline
    aside = [n for n in dict.fromkeys([*([baseline] if baseline else []), *names_list]) if n not in known]
    if baseline and baseline not in known:
        config = dataclasses.replace(config, model=config.model.model_copy(update={"baseline": None}))
    return config, [n for n in names_list if n in known], aside
