"""Build step for the wheel: copy the checkout's `hooks/` and `fixtures/` into the package.

The checkout folders stay the source of truth (the service reads them when it runs from a checkout); the
wheel carries a copy, `cds_service/_bundled/`, made here at build time and never committed. Everything
else is declared in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# What the installed service needs: discovery entries, fixture patients, draft orders and cases.
BUNDLED = {"hooks": ("*.json",), "fixtures": ("cases.json", "patients/*.json", "orders/*.json")}


class BuildPyWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout folders themselves
        target = Path(self.build_lib) / "cds_service" / "_bundled"
        shutil.rmtree(target, ignore_errors=True)
        for folder, patterns in BUNDLED.items():
            copied = 0
            for pattern in patterns:
                for source in sorted((ROOT / folder).glob(pattern)):
                    destination = target / folder / source.relative_to(ROOT / folder)
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source, destination)
                    copied += 1
            if not copied:
                raise SystemExit(f"setup.py: nothing to bundle from {folder}/ (run the build from the checkout)")


setup(cmdclass={"build_py": BuildPyWithData})
