"""The import contracts of pyproject.toml ([tool.importlinter], docs/design.md#dependencies) hold for
the code, and each one catches the violation it is there for: a broken drawing fails the suite, not
only `make lint`."""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT

LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")
PYPROJECT = Path(ROOT) / "pyproject.toml"


def lint_imports(cwd: Path, *contracts: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    args = [LINT_IMPORTS, "--no-logo", "--no-cache", *(a for c in contracts for a in ("--contract", c))]
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_code_keeps_every_contract():
    run = lint_imports(Path(ROOT))
    assert run.returncode == 0, run.stdout + run.stderr
    assert " 0 broken" in run.stdout


def _modules_named(config: dict) -> tuple[set[str], dict[str, set[str]]]:
    """Every module the contracts name, and the imports their ignore lists expect to find."""
    names: set[str] = set(config["root_packages"])
    imports: dict[str, set[str]] = {}
    for contract in config["contracts"]:
        for key in ("layers", "source_modules", "forbidden_modules", "protected_modules", "ancestors"):
            names.update(contract.get(key, []))
        for line in contract.get("ignore_imports", []):
            importer, imported = (part.strip() for part in line.split("->"))
            names.update((importer, imported))
            imports.setdefault(importer, set()).add(imported)
    return names, imports


@pytest.fixture
def stub_tree(tmp_path: Path) -> Path:
    """A project of empty modules with our package names and the repository's contracts: the
    contracts hold for it (the ignored imports are there), so a planted import is all that breaks."""
    config = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
    names, imports = _modules_named(config)
    for package in config["root_packages"]:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").touch()
    for name in names:
        parts = name.split(".")
        for i in range(1, len(parts)):
            package = tmp_path.joinpath(*parts[:i])
            package.mkdir(exist_ok=True)
            (package / "__init__.py").touch()
        module = tmp_path.joinpath(*parts[:-1], parts[-1] + ".py")
        if not tmp_path.joinpath(*parts).is_dir():
            module.write_text("".join(f"import {m}\n" for m in sorted(imports.get(name, ()))))
    (tmp_path / "pyproject.toml").write_text(PYPROJECT.read_text())
    return tmp_path


def plant(root: Path, module: str, source: str) -> None:
    """Write `module`; a parent that is a plain module becomes a package (same imports)."""
    parts = module.split(".")
    for i in range(1, len(parts)):
        package, as_module = root.joinpath(*parts[:i]), root.joinpath(*parts[: i - 1], parts[i - 1] + ".py")
        if as_module.is_file():
            package.mkdir()
            as_module.rename(package / "__init__.py")
    root.joinpath(*parts[:-1], parts[-1] + ".py").write_text(source)


def test_the_stub_project_keeps_every_contract(stub_tree):
    run = lint_imports(stub_tree)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize(
    "contract, module, source",
    [
        ("flow-layers", "inventory.upstream", "import orders\n"),
        ("flow-layers", "orderflow.core.reaching", "import inventory\n"),
        ("listeners", "payments.noisy", "import alerts\n"),
        ("listeners-one-way", "alerts.looking_back", "import dashboard\n"),
        ("wiring-on-top", "orderflow.core.readiness", "def app():\n    from orderflow.celery import app\n"),
        ("mock-gateway-alone", "mock_gateway.shortcut", "import orderflow.core\n"),
        ("nothing-imports-mock-gateway", "payments.bank", "import mock_gateway\n"),
        ("orders-models", "dashboard.peek", "from orders.models import Order\n"),
        ("inventory-models", "orders.peek", "import inventory.models\n"),
    ],
)
def test_each_contract_catches_its_violation(stub_tree, contract, module, source):
    plant(stub_tree, module, source)
    run = lint_imports(stub_tree, contract)
    assert run.returncode == 1 and "BROKEN" in run.stdout, run.stdout + run.stderr


def test_a_cycle_hidden_by_a_function_level_import_is_caught(stub_tree):
    plant(stub_tree, "dashboard.push", "import dashboard.tasks\n")
    plant(stub_tree, "dashboard.tasks", "def later():\n    import dashboard.push\n")
    run = lint_imports(stub_tree, "no-cycles")
    assert run.returncode == 1 and "No cycles are allowed in dashboard" in run.stdout, run.stdout
