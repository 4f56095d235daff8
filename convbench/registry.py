"""Name -> algorithm. Built-ins and plugins arrive through the same door.

Every algorithm is registered with :func:`register` (usable as a class
decorator) while its module is imported by :func:`load_plugin`. The
built-ins are the modules named in :data:`BUILTIN_MODULES`; installed plugins
are entry points of the group ``convbench.algorithms``; anything else is named
as a plugin of a run (``--plugin PATH_OR_MODULE``) or in a config's ``plugins:``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Iterator, TypeVar

from .algorithm import Algorithm
from .hints import did_you_mean
from .spec import DTYPES

#: The built-in algorithms, one module each, loaded through :func:`load_plugin`
#: like any plugin (importing ``convbench.algorithms`` itself registers nothing).
BUILTIN_MODULES = tuple(
    f"convbench.algorithms.{module}"
    for module in (
        "naive", "im2col", "gemm_direct", "winograd", "winograd_tiled", "fft", "indirect", "im2col_numba",
        "direct_blocked",
        # peers: each registers only where its package is installed
        "torch_peer", "onnxruntime_peer",
    )
)

ENTRY_POINT_GROUP = "convbench.algorithms"
REQUIRED_METHODS = ("supports", "prepare", "workspace_bytes", "tolerance_for")


class PluginError(Exception):
    """A plugin could not be loaded or registered; the message names it."""


@dataclass
class _Entry:
    algorithm: Algorithm
    source: str


_REGISTRY: dict[str, _Entry] = {}
_LOADED: set[str] = set()
_loading_source: list[str] = []
_builtins_loaded = False

A = TypeVar("A")


@contextlib.contextmanager
def _source(name: str) -> Iterator[None]:
    _loading_source.append(name)
    try:
        yield
    finally:
        _loading_source.pop()


def register(algorithm: A, *, source: str | None = None) -> A:
    """Register an :class:`Algorithm` subclass or instance; returns it unchanged.

    Usable as a class decorator. Raises :class:`PluginError` when the object
    lacks the interface, is not a :class:`Algorithm` (whose ``prepare`` and
    calls carry the input guard), declares ``dtypes`` convbench does not know,
    or its name is taken (both sources are named).
    """
    obj = algorithm() if isinstance(algorithm, type) else algorithm
    where = source or (_loading_source[-1] if _loading_source else getattr(obj, "__module__", "?"))
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name:
        raise PluginError(f"{where}: algorithm {obj!r} has no 'name' (a non-empty string).")
    missing = [m for m in REQUIRED_METHODS if not callable(getattr(obj, m, None))]
    if missing:
        raise PluginError(
            f"{where}: algorithm {name!r} lacks required method(s) {', '.join(missing)}; "
            "subclass convbench.Algorithm and implement prepare()."
        )
    if not isinstance(obj, Algorithm):
        # the input guard lives in Algorithm (convbench.guard); an object that
        # merely looks like one would reach the runner unguarded
        raise PluginError(
            f"{where}: algorithm {name!r} is a {type(obj).__qualname__}, not a convbench.Algorithm; "
            "subclass convbench.Algorithm so its prepare() and calls go through the input guard."
        )
    dtypes = getattr(obj, "dtypes", None)
    if not isinstance(dtypes, tuple) or not dtypes or any(d not in DTYPES for d in dtypes):
        raise PluginError(
            f"{where}: algorithm {name!r} declares dtypes {dtypes!r}; 'dtypes' must be a non-empty tuple "
            f"of {', '.join(map(repr, DTYPES))}."
        )
    if name in _REGISTRY and type(_REGISTRY[name].algorithm) is type(obj) and isinstance(algorithm, type):
        return algorithm  # the same class reached twice (e.g. entry point and --plugin)
    if name in _REGISTRY:
        raise PluginError(
            f"Two algorithms are named {name!r}: one from {_REGISTRY[name].source}, "
            f"one from {where}. Rename one of them."
        )
    _REGISTRY[name] = _Entry(obj, where)
    return algorithm


def unregister(name: str) -> None:
    """Remove ``name`` from the registry (for tests and interactive use)."""
    _REGISTRY.pop(name, None)


def looks_like_file(target: str) -> bool:
    """Whether a plugin target names a file (``.py``, or containing a slash) rather than a module."""
    return target.endswith(".py") or "/" in target or "\\" in target


def plugin_target(target: str, base_dir: str | Path | None = None) -> str:
    """A plugin as it is loaded and recorded: a file path (``.py``, or containing a
    slash) made absolute against ``base_dir``, so a results folder names it wherever
    it is read from; a module name, or anything when ``base_dir`` is None, as given."""
    if base_dir is None or not looks_like_file(target) or Path(target).is_absolute():
        return target
    return str((Path(base_dir) / target).resolve())


def load_plugin(target: str) -> None:
    """Import a plugin module (dotted name) or file (``.py`` path) so it registers.

    Loading the same target twice is a no-op.
    """
    if target in _LOADED:
        return
    path = Path(target)
    try:
        with _source(target):
            if target.endswith(".py") or path.exists():
                if not path.is_file():
                    raise FileNotFoundError(f"no such file: {path}")
                modname = f"convbench_plugin_{path.stem}_{abs(hash(str(path.resolve()))):x}"
                spec = importlib.util.spec_from_file_location(modname, path)
                module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
                sys.modules[modname] = module
                spec.loader.exec_module(module)  # type: ignore[union-attr]
            else:
                importlib.import_module(target)
    except PluginError:
        raise
    except (Exception, SystemExit) as exc:  # a plugin may raise anything on import
        raise PluginError(
            f"Plugin {target!r} failed to import: {type(exc).__name__}: {exc}"
        ) from exc
    _LOADED.add(target)


def load_entry_point(ep: EntryPoint) -> None:
    """Load one installed plugin: ``module`` (importing it registers) or
    ``module:obj``, where ``obj`` is an Algorithm class/instance to register
    or a function that registers when called."""
    dist = getattr(ep.dist, "name", None) or "an installed package"
    label = f"entry point {ep.name!r} ({ep.value}) of {dist}"
    with _source(label):
        try:
            obj = ep.load()
        except (Exception, SystemExit) as exc:
            raise PluginError(f"Plugin {label} failed to import: {type(exc).__name__}: {exc}") from exc
        if isinstance(obj, type) and issubclass(obj, Algorithm) or isinstance(obj, Algorithm):
            register(obj)
        elif callable(obj):
            obj()


def _ensure_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    for module in BUILTIN_MODULES:
        load_plugin(module)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        load_entry_point(ep)


def get_algorithm(name: str) -> Algorithm:
    """The registered algorithm called ``name``; ``KeyError`` lists known names."""
    _ensure_builtins()
    try:
        return _REGISTRY[name].algorithm
    except KeyError:
        raise KeyError(_unknown(name)) from None


def _unknown(name: str) -> str:
    known = list(_REGISTRY)
    return (f"unknown algorithm {name!r}{did_you_mean(name, known) or '.'} "
            f"Known algorithms: {', '.join(known) or '(none registered)'}.")


def require_algorithms(names: list[str] | None) -> list[str]:
    """``names`` (every registered one when None), checked: ``ValueError`` names the
    first unknown one, the nearest known name and every known name."""
    _ensure_builtins()
    if names is None:
        return list(_REGISTRY)
    for name in names:
        if name not in _REGISTRY:
            raise ValueError(_unknown(name))
    return list(names)


def source_of(name: str) -> str:
    """Where the algorithm ``name`` was registered from."""
    _ensure_builtins()
    return _REGISTRY[name].source


def loaded_plugins() -> list[str]:
    """Plugin targets (modules, files) loaded so far, built-in modules excepted:
    what another process must load to see the same algorithms."""
    return sorted(t for t in _LOADED if t not in BUILTIN_MODULES)


def registered_at_runtime(names: list[str]) -> list[str]:
    """Those of ``names`` registered by a plain call, not by loading a plugin
    module, file or entry point: another process cannot reproduce them."""
    _ensure_builtins()
    return [
        n for n in names
        if n in _REGISTRY and _REGISTRY[n].source not in _LOADED
        and not _REGISTRY[n].source.startswith("entry point")
    ]


def list_algorithms() -> list[str]:
    """Names of every registered algorithm, built-ins first in registration order."""
    _ensure_builtins()
    return list(_REGISTRY)
