"""Reading configs: files and names, YAML errors with line numbers, and writing a config back.

:func:`load_config` finds a file (or a name in ``configs/``), :func:`parse_config`
validates it against :mod:`.schema` and expands it (:mod:`.expand`), naming the
file, line, layer and field of the first problems it finds.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..hints import did_you_mean
from ..registry import PluginError, load_plugin, plugin_target
from .expand import Config, expand
from .schema import ConfigError, ConfigModel, LayerFields, LayerModel, SweepModel, TimingModel


def default_config_text() -> str:
    """The embedded default sweep (``convbench run`` with no argument)."""
    return resources.files("convbench").joinpath("data/default.yaml").read_text()


def find_config(target: str | Path) -> Path:
    """A config path, or a bare name found as ``configs/NAME.yaml`` (cwd, then the repo)."""
    path = Path(target)
    if path.is_file():
        return path
    bare = not path.suffix and len(path.parts) == 1
    repo_configs = Path(__file__).resolve().parents[2] / "configs"
    folders = [Path("configs"), repo_configs] if bare else [path.parent]
    if bare:
        for folder in folders:
            candidate = folder / f"{path.name}.yaml"
            if candidate.is_file():
                return candidate
    names = sorted({
        (p.stem if bare else p.name)
        for folder in folders if folder.is_dir()
        for p in folder.iterdir() if p.suffix in (".yaml", ".yml")
    })
    hint = did_you_mean(path.name, names)
    if bare and not hint and names:
        hint = f". Configs: {', '.join(names)}"
    raise ConfigError(f"{target}: no such config file{hint}")


def load_config(target: str | Path | None = None) -> Config:
    """Read, validate and expand a config file (``None``: the embedded default)."""
    if target is None:
        return parse_config(default_config_text(), "<default sweep>", default_name="default")
    path = find_config(target)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_config(text, str(path), default_name=path.stem, base_dir=path.parent)


def parse_config(
    text: str, where: str = "<config>", default_name: str = "config", base_dir: Path | None = None
) -> Config:
    """Validate and expand config text; ``where`` names it in error messages.

    Plugin files in ``plugins:`` are relative to ``base_dir`` (the config's folder).
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}{at}: malformed YAML: {problem}") from None
    if raw is None:
        raise ConfigError(f"{where}: the config is empty")
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: the config must be a mapping of keys (name, layers, ...), got {type(raw).__name__}")
    try:
        model = ConfigModel.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, raw, node, where)) from None
    model.plugins = [plugin_target(p, base_dir) for p in model.plugins]
    for plugin in model.plugins:
        try:
            load_plugin(plugin)
        except PluginError as exc:
            raise ConfigError(f"{where}: field 'plugins': {exc}") from None
    layers = expand(model, where, lambda *loc: _at(where, node, loc))
    if not layers:
        raise ConfigError(
            f"{where}: the sweep is empty: every grid combination was dropped as invalid (drop_invalid); "
            "widen the grids or add 'layers'"
        )
    return Config(model.name or default_name, where, model, layers, model.timing.settings())


def _explain(exc: ValidationError, raw: dict, node: Any, where: str) -> str:
    """The first pydantic error as 'file, line N: layer 'x': field 'y': problem'."""
    lines = []
    for err in exc.errors()[:3]:
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        context, field_path = _describe_loc(loc, raw)
        kind = err["type"]
        line = _line_of(node, loc)
        at = f", line {line}" if line else ""
        if kind == "extra_forbidden":
            key = str(loc[-1])
            options = _keys_for(loc[:-1])
            problem = f"unknown field {key!r}{did_you_mean(key, options)}"
            if not problem.endswith("?"):
                problem += f". Valid fields: {', '.join(options)}"
        elif kind == "missing":
            problem = f"field {field_path!r} is required"
        else:
            msg = err["msg"].removeprefix("Value error, ")
            problem = f"field {field_path!r}: {msg}" if field_path else msg
            if kind not in ("value_error",) and "input" in err and not isinstance(err["input"], dict):
                problem += f" (got {err['input']!r})"
        lines.append(f"{where}{at}: {context}{problem}")
    return "\n".join(lines)


def _at(where: str, node: Any, loc: tuple) -> str:
    line = _line_of(node, list(loc))
    return f"{where}, line {line}" if line else where


def _describe_loc(loc: list, raw: dict) -> tuple[str, str]:
    """('layer 'conv1' (layers[0]): ', 'kernel') for a pydantic loc."""
    if len(loc) >= 2 and loc[0] in ("layers", "sweeps") and isinstance(loc[1], int):
        kind = "layer" if loc[0] == "layers" else "grid"
        item = raw.get(loc[0])
        name = None
        if isinstance(item, list) and loc[1] < len(item) and isinstance(item[loc[1]], dict):
            name = item[loc[1]].get("name")
        label = f"{kind} {name!r} ({loc[0]}[{loc[1]}])" if name is not None else f"{loc[0]}[{loc[1]}]"
        return f"{label}: ", ".".join(str(p) for p in loc[2:])
    if loc and loc[0] in ("defaults", "timing"):
        return f"{loc[0]}: ", ".".join(str(p) for p in loc[1:])
    return "", ".".join(str(p) for p in loc)


def _keys_for(parent: list) -> list[str]:
    if not parent:
        return list(ConfigModel.model_fields)
    if parent[0] == "timing":
        return list(TimingModel.model_fields)
    if parent[0] == "defaults":
        return list(LayerFields.model_fields)
    if parent[0] == "layers":
        return list(LayerModel.model_fields)
    if parent[0] == "sweeps":
        return list(SweepModel.model_fields)
    return []


def _line_of(node: Any, loc: list) -> int | None:
    """1-based line of the YAML node at ``loc`` (or its nearest parent)."""
    line = None
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        nxt = None
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == str(part):
                    nxt = k if part == loc[-1] else v
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            nxt = node.value[part]
        node = nxt
    if node is not None:
        line = node.start_mark.line + 1
    return line


def dump_config(data: dict[str, Any], header: str = "") -> str:
    """YAML text of a config dict (used for ``config.yaml`` of a results folder)."""

    class _Dumper(yaml.SafeDumper):
        pass

    def _list(dumper: yaml.SafeDumper, value: list) -> Any:
        flow = all(not isinstance(v, (dict, list)) for v in value)
        return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)

    _Dumper.add_representer(list, _list)
    _Dumper.add_representer(tuple, lambda d, v: _list(d, list(v)))
    text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=100)
    return (header + text) if header else text
