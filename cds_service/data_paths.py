"""Where the service's data lives: `hooks/` and `fixtures/` of the checkout, or their copies in the package.

The checkout folders are the source of truth. Building a wheel copies them into the package as
`cds_service/_bundled/` (setup.py, build step `build_py`); an installed service reads that copy, a
checkout (editable install, PYTHONPATH, `make run`) reads the folders themselves. The copy is never
committed, so the two cannot drift in the repository.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
CHECKOUT_ROOT = PACKAGE_DIR.parent
BUNDLED_DIR = PACKAGE_DIR / "_bundled"


def installed_from_wheel() -> bool:
    return BUNDLED_DIR.is_dir()


def data_dir(name: str) -> Path:
    """`hooks` or `fixtures`: the bundled copy in an installed wheel, the checkout folder otherwise."""
    return BUNDLED_DIR / name if installed_from_wheel() else CHECKOUT_ROOT / name


def default_database_path() -> Path:
    """SQLite under `var/`: the checkout's in a checkout, the working directory's for an installed service
    (never inside site-packages)."""
    root = Path.cwd() if installed_from_wheel() else CHECKOUT_ROOT
    return root / "var" / "cds.sqlite3"
