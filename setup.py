"""Build hook: copy the top-level schemas/ into the package so a wheel carries them."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithSchemas(build_py):
    def run(self) -> None:
        super().run()
        source = Path(__file__).parent / "schemas"
        target = Path(self.build_lib) / "runner" / "_schemas"
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildWithSchemas})
