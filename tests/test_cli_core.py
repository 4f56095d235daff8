"""`convbench list` and `convbench verify` as a user runs them."""

from typer.testing import CliRunner

from convbench.cli import app

runner = CliRunner()


def test_list_shows_every_builtin_with_layout_and_constraints():
    result = runner.invoke(app, ["list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in ("naive", "im2col", "gemm-direct", "winograd", "fft", "indirect"):
        assert name in result.output
    assert "3x3 kernel, stride 1, dilation 1" in result.output


def test_verify_one_algorithm_prints_table_and_exits_zero():
    result = runner.invoke(app, ["verify", "--algorithm", "gemm-direct"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "gemm-direct" in result.output and "worst error" in result.output


def test_verify_exits_one_when_an_algorithm_is_wrong(tmp_path):
    plugin = tmp_path / "wrong_plugin.py"
    plugin.write_text(
        "import numpy as np, convbench\n"
        "@convbench.register\n"
        "class OffByOne(convbench.Algorithm):\n"
        "    name = 'test-off-by-one'\n"
        "    def prepare(self, spec, weight):\n"
        "        def call(x):\n"
        "            return (convbench.reference(spec, x, weight) + 1).astype(spec.dtype)\n"
        "        return call\n"
    )
    try:
        result = runner.invoke(app, ["verify", "--plugin", str(plugin), "-a", "test-off-by-one"])
        assert result.exit_code == 1, result.output
    finally:
        from convbench.registry import unregister
        unregister("test-off-by-one")


def test_verify_unknown_algorithm_is_a_clear_error():
    result = runner.invoke(app, ["verify", "-a", "nope"])
    assert result.exit_code == 2
    assert "unknown algorithm 'nope'" in result.output and "im2col" in result.output
