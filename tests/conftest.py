"""Shared test options and helpers. Golden files are regenerated only with an explicit flag:

    .venv/bin/python -m pytest tests/test_cli.py --update-golden
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "workloads"
os.chdir(ROOT)  # the tests address shipped examples as workloads/<name>.yaml


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite tests/golden/* from the current output instead of comparing")
    parser.addoption("--update-compare-fixtures", action="store_true", default=False,
                     help="re-solve eu_saas base and stress into tests/data/results/compare/*.json")


@pytest.fixture
def update_golden(request) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture
def example_path() -> Path:
    """The reference example scenario, workloads/eu_saas.yaml."""
    return EXAMPLES / "eu_saas.yaml"


@pytest.fixture
def run_cli() -> Callable[..., Result]:
    """Run ``planner ARGS...`` in-process; returns click's Result (exit_code, output, stderr)."""
    from planner.cli import main

    def run(*args: str | Path) -> Result:
        return CliRunner().invoke(main, [str(a) for a in args])

    return run


@pytest.fixture(scope="session")
def solved_example(tmp_path_factory):
    """``planner solve workloads/<name>.yaml [--variant V] --out DIR --quiet --time-limit 20``, run
    once per session and shared by the tests that read its outputs (CLI, manifests):
    returns (click Result, out dir)."""
    from planner.cli import main

    cache: dict[tuple, tuple[Result, Path]] = {}

    def get(name: str, variant: str | None = None) -> tuple[Result, Path]:
        if (name, variant) not in cache:
            out = tmp_path_factory.mktemp(f"{name}-{variant or 'base'}") / "out"
            args = ["solve", str(EXAMPLES / f"{name}.yaml"), "--out", str(out), "--quiet", "--time-limit", "20"]
            if variant:
                args += ["--variant", variant]
            cache[(name, variant)] = (CliRunner().invoke(main, args), out)
        return cache[(name, variant)]

    return get


# CI (CI=true) replays the same hypothesis examples every run, so a red build is reproducible;
# local runs keep exploring new examples.
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
