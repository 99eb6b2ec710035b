"""The docker route's install step (scripts/container_install.py): pip adds what is missing and never
replaces a package the container already holds. Runs pip against this test's own interpreter, offline
(--no-index), so nothing is installed: what is asked is already there, or contradicts what is."""

import sys

import container_install
import pytest

from enginebench.container_env import canonical, changed, constraints_text, freeze, install
from enginebench.errors import EngineBenchError


def test_freeze_pins_every_installed_package_by_its_canonical_name():
    pins = freeze(sys.executable)
    import numpy
    import pytest as pytest_module

    assert pins["numpy"] == numpy.__version__ and pins["pytest"] == pytest_module.__version__
    assert all(name == canonical(name) for name in pins)
    assert constraints_text({"b": "2", "a": "1.0"}) == "a==1.0\nb==2\n"


def test_changed_names_replaced_and_removed_packages():
    before = {"numpy": "1.26.4", "transformers": "4.57.3", "pip": "25.0"}
    after = {"numpy": "2.4.5", "pip": "25.0", "snakemake": "9.27.1"}
    assert changed(before, after) == ["numpy: 1.26.4 -> 2.4.5", "transformers: 4.57.3 -> removed"]
    assert changed(before, {**before, "snakemake": "9.27.1"}) == []  # an addition is what it is for


def test_a_requirement_already_met_installs_nothing(tmp_path, capsys):
    import numpy

    requirements = tmp_path / "req.txt"
    requirements.write_text("numpy\n")
    before, after = install(sys.executable, [requirements], tmp_path / "c.txt", pip_args=("--no-index",))
    assert before == after and f"numpy=={numpy.__version__}\n" in (tmp_path / "c.txt").read_text()


def test_a_requirement_that_would_replace_a_container_package_stops_the_install(tmp_path):
    import numpy

    requirements = tmp_path / "req.txt"
    requirements.write_text(f"numpy!={numpy.__version__}\n")  # e.g. enginebench's numpy>=2 against numpy<2
    with pytest.raises(EngineBenchError, match="without replacing a package the container holds"):
        install(sys.executable, [requirements], tmp_path / "c.txt", pip_args=("--no-index",))
    assert freeze(sys.executable)["numpy"] == numpy.__version__


def test_cli_prints_the_watched_versions_before_and_after(tmp_path, capsys, monkeypatch):
    requirements = tmp_path / "req.txt"
    requirements.write_text("numpy\n")
    monkeypatch.setattr(container_install, "install",
                        lambda python, reqs, constraints: install(python, reqs, constraints, ("--no-index",)))
    assert container_install.main(["-r", str(requirements)]) == 0
    out = capsys.readouterr().out.splitlines()
    import numpy

    assert out[0].startswith("before: ") and f"numpy=={numpy.__version__}" in out[0]
    assert out[1].replace("after:  ", "before: ") == out[0]
