"""Plugins: one door for built-ins and plugins, clear errors, the skeleton works."""

import textwrap
from importlib.metadata import EntryPoint

import pytest
from typer.testing import CliRunner

import convbench
from convbench.cli import app
from convbench.registry import PluginError, load_entry_point, load_plugin, source_of, unregister
from convbench.scaffold import write_plugin_skeleton
from convbench.testing import check_algorithm, conformance_specs
from extras import needs_extra

runner = CliRunner()


@pytest.fixture
def plugin_file(tmp_path):
    """Write a plugin module; unregister what it registered afterwards."""
    names = []

    def write(source: str, registers: tuple[str, ...] = ()) -> str:
        path = tmp_path / f"plugin_{len(names)}.py"
        path.write_text(textwrap.dedent(source))
        names.extend(registers)
        return str(path)

    yield write
    for name in names:
        unregister(name)


def test_builtins_are_registered_by_the_plugin_loader():
    assert source_of("im2col") == "convbench.algorithms.im2col"
    assert source_of("indirect") == "convbench.algorithms.indirect"


def test_plugin_that_fails_to_import_names_itself_and_its_exception(plugin_file):
    path = plugin_file("import numpy\nraise RuntimeError('kernel library not found')\n")
    with pytest.raises(PluginError) as info:
        load_plugin(path)
    message = str(info.value)
    assert path in message and "RuntimeError: kernel library not found" in message


def test_missing_plugin_file_is_a_plugin_error(tmp_path):
    with pytest.raises(PluginError, match="no such file"):
        load_plugin(str(tmp_path / "absent.py"))


def test_two_algorithms_with_one_name_name_both_sources(plugin_file):
    path = plugin_file(
        """
        import convbench
        @convbench.register
        class Clash(convbench.Algorithm):
            name = "im2col"
            def prepare(self, spec, weight):
                raise NotImplementedError
        """
    )
    with pytest.raises(PluginError) as info:
        load_plugin(path)
    assert "convbench.algorithms" in str(info.value) and path in str(info.value)
    assert "Two algorithms are named 'im2col'" in str(info.value)


def test_plugin_object_missing_a_method_is_refused(plugin_file):
    path = plugin_file(
        """
        import convbench
        class NotAnAlgorithm:
            name = "half-done"
            def supports(self, spec):
                return None
        convbench.register(NotAnAlgorithm())
        """
    )
    with pytest.raises(PluginError, match=r"'half-done' lacks required method\(s\) prepare"):
        load_plugin(path)


def test_cli_reports_broken_plugin_without_traceback(plugin_file):
    path = plugin_file("raise ImportError('no module named fastconv')\n")
    result = runner.invoke(app, ["list", "--plugin", path])
    assert result.exit_code == 2
    assert "ImportError: no module named fastconv" in result.output
    assert "Traceback" not in result.output


def test_entry_point_plugin_is_loaded_and_named_in_errors(plugin_file, tmp_path, monkeypatch):
    module = tmp_path / "ep_plugin_mod.py"
    module.write_text(
        "import convbench\n"
        "class EpAlgo(convbench.Algorithm):\n"
        "    name = 'ep-algo'\n"
        "    def prepare(self, spec, weight):\n"
        "        return lambda x: convbench.reference(spec, x, weight).astype(spec.dtype)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        load_entry_point(EntryPoint("ep-algo", "ep_plugin_mod:EpAlgo", "convbench.algorithms"))
        assert "ep-algo" in convbench.list_algorithms()
        assert "entry point 'ep-algo'" in source_of("ep-algo")
    finally:
        unregister("ep-algo")
    with pytest.raises(PluginError, match="entry point 'broken'.*ModuleNotFoundError"):
        load_entry_point(EntryPoint("broken", "no_such_module_xyz", "convbench.algorithms"))


@needs_extra("example-plugin")
def test_installed_example_plugin_arrives_through_its_entry_point():
    assert "entry point 'scipy-correlate'" in source_of("scipy-correlate")


def test_new_plugin_skeleton_passes_the_battery(tmp_path):
    path = write_plugin_skeleton("skeleton-test", tmp_path)
    assert path.name == "skeleton_test.py"
    try:
        load_plugin(str(path))
        specs = conformance_specs()[::5]
        results = check_algorithm("skeleton-test", specs)
        assert results and all(r.status == "passed" for r in results), [
            r for r in results if r.status != "passed"
        ]
    finally:
        unregister("skeleton-test")


def test_new_plugin_refuses_to_overwrite_and_bad_names(tmp_path):
    target = tmp_path / "x.py"
    target.write_text("keep me")
    result = runner.invoke(app, ["new-plugin", "my-algo", "--out", str(target)])
    assert result.exit_code == 2 and "already exists" in result.output
    assert target.read_text() == "keep me"
    result = runner.invoke(app, ["new-plugin", "9lives"])
    assert result.exit_code == 2 and "must start with a letter" in result.output


def test_battery_reports_a_wrong_plugin_as_failed_not_passed(plugin_file):
    path = plugin_file(
        """
        import numpy as np, convbench
        @convbench.register
        class Zeros(convbench.Algorithm):
            name = "test-zeros"
            def prepare(self, spec, weight):
                return lambda x: np.zeros(spec.output_shape, spec.dtype)
        @convbench.register
        class WrongShape(convbench.Algorithm):
            name = "test-wrong-shape"
            def prepare(self, spec, weight):
                return lambda x: np.zeros((1, 1, 1, 1), spec.dtype)
        """,
        registers=("test-zeros", "test-wrong-shape"),
    )
    load_plugin(path)
    specs = conformance_specs()[:4]
    assert {r.status for r in check_algorithm("test-zeros", specs) if r.check == "check_matches_reference"} == {"failed"}
    by_check: dict[str, set[str]] = {}
    for r in check_algorithm("test-wrong-shape", specs):
        by_check.setdefault(r.check, set()).add(r.status)
    # every check that looks at the output fails it on every spec; none passes it
    for check in ("check_matches_reference", "check_output_shape_and_dtype", "check_prepared_call_is_reusable"):
        assert by_check[check] and by_check[check] <= {"failed", "error"}, (check, by_check[check])


@pytest.mark.parametrize("leak", ["keeps_first_answer", "reuses_output_buffer"])
def test_battery_catches_state_kept_between_calls_on_every_spec(plugin_file, leak):
    """An algorithm right on the first input of a prepared call, wrong after it: the
    check of a second input must run on every spec, not a sample."""
    body = {
        # remembers its first answer and returns it for every later input
        "keeps_first_answer": """
                memo = []
                def call(x):
                    if not memo:
                        memo.append(convbench.reference(spec, x, weight).astype(spec.dtype))
                    return memo[0].copy()
                return call""",
        # right answers, but always in the same array: the caller's earlier result changes
        "reuses_output_buffer": """
                out = np.empty(spec.output_shape, spec.dtype)
                def call(x):
                    out[...] = convbench.reference(spec, x, weight)
                    return out
                return call""",
    }[leak]
    name = f"test-leaky-{leak.replace('_', '-')}"
    path = plugin_file(
        f"""
        import numpy as np, convbench
        @convbench.register
        class Leaky(convbench.Algorithm):
            name = "{name}"
            def prepare(self, spec, weight):{body}
        """,
        registers=(name,),
    )
    from convbench import registry

    load_plugin(path)
    try:
        specs = conformance_specs()[:8]
        results = [r for r in check_algorithm(name, specs) if r.check == "check_matches_reference"]
        assert len(results) == len(specs) and {r.status for r in results} == {"failed"}, results[0].message
    finally:  # later sweeps' workers load every loaded plugin: this one must not be among them
        registry._LOADED.discard(path)


def test_config_plugins_are_relative_to_the_config_file(tmp_path, monkeypatch):
    sub = tmp_path / "cfg"
    sub.mkdir()
    write_plugin_skeleton("cfg-relative", sub)
    (sub / "c.yaml").write_text(
        "name: rel\nplugins: [cfg_relative.py]\nalgorithms: [cfg-relative]\nbaseline: cfg-relative\n"
        "layers:\n  - {name: a, in_channels: 2, out_channels: 3, size: 5, kernel: 3, padding: 1}\n"
    )
    monkeypatch.chdir(tmp_path)  # not the config's folder
    from convbench.config import load_config, load_config_plugins

    try:
        config = load_config(sub / "c.yaml")
        assert config.model.plugins == [str((sub / "cfg_relative.py").resolve())]
        assert "cfg-relative" not in convbench.list_algorithms()  # parsing loads nothing
        load_config_plugins(config, allow=True)
        assert "cfg-relative" in convbench.list_algorithms()
    finally:
        unregister("cfg-relative")
