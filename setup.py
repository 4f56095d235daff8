"""Build hook: ship ``configs/*.yaml`` inside the package as ``convbench/configs/``.

The configs live at the top of the repository (where `convbench run
configs/mobilenet.yaml` finds them and where they are documented), but a
non-editable ``pip install .`` copies only the package; without this,
``convbench run mobilenet`` and ``convbench reproduce`` fail outside a
checkout. ``convbench.config.find_config`` looks there after ``./configs``.
Everything else is in ``pyproject.toml``.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildPyWithConfigs(build_py):
    """``build_py`` that also copies the repository's configs into the built package."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "convbench" / "configs"
        self.mkpath(str(target))
        for src in sorted((HERE / "configs").glob("*.yaml")):
            self.copy_file(str(src), str(target / src.name))


setup(cmdclass={"build_py": BuildPyWithConfigs})
