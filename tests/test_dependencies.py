"""Dependencies are ranges in pyproject.toml and exact pins in constraints.txt, and they agree."""

from __future__ import annotations

import tomllib
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO_ROOT


def requirements() -> list[Requirement]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    raw = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        raw += extra
    return [Requirement(line) for line in raw]


def pins() -> dict[str, str]:
    found = {}
    for line in (REPO_ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            found[canonicalize_name(name.split("[")[0])] = version.strip()
    return found


@pytest.mark.parametrize("requirement", requirements(), ids=str)
def test_each_dependency_is_a_bounded_range(requirement):
    """Every dependency has a lower and an upper bound, never an exact pin or nothing."""
    operators = {spec.operator for spec in requirement.specifier}
    assert operators & {">=", ">", "~="}, f"{requirement} has no lower bound"
    assert operators & {"<", "<=", "~="}, f"{requirement} has no upper bound"


@pytest.mark.parametrize("requirement", requirements(), ids=str)
def test_constraints_pin_each_dependency_inside_its_range(requirement):
    """constraints.txt pins every dependency to a version its range allows."""
    pinned = pins().get(canonicalize_name(requirement.name))
    assert pinned, f"{requirement.name} is not pinned in constraints.txt: regenerate it"
    assert requirement.specifier.contains(pinned, prereleases=True), (requirement, pinned)


@pytest.mark.parametrize("requirement", requirements(), ids=str)
def test_installed_versions_match_the_constraints(requirement):
    """The environment the tests run in is the locked one (a stale .venv fails here first)."""
    pinned = pins()[canonicalize_name(requirement.name)]
    assert metadata.version(requirement.name) == pinned
