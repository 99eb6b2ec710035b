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


def _standin(folder, name: str, version: str):
    """A local distribution `name` `version` with one module: a freeze entry of an image-like Python
    (PuLP has no 3.4 on PyPI yet; snakemake 9.27.1 caps pulp < 3.4 all the same)."""
    folder.mkdir()
    (folder / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "{version}"\n[build-system]\nrequires = ["setuptools"]\n'
        'build-backend = "setuptools.build_meta"\n[tool.setuptools]\npy-modules = ["' + name + '"]\n')
    (folder / f"{name}.py").write_text(f"__version__ = {version!r}\n")
    return folder


def test_snakemake_gets_its_own_environment_and_the_image_is_untouched(tmp_path):
    """Issue 23, item 2: an image whose freeze holds packaging 26 and pulp 3.4 (both outside snakemake
    9.27.1's caps) refuses snakemake under its own constraints (the docker route's old install); with
    --snakemake-env, Snakemake gets a venv of its own, the image's freeze stays identical, the Snakefile's
    parse sees the image's packages behind Snakemake's own, and the jobs run the image's python."""
    import subprocess
    import venv

    image = tmp_path / "image"
    venv.create(image, with_pip=True)
    python = str(image / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "packaging==26.0",
                    str(_standin(tmp_path / "pulp", "pulp", "3.4.0")),
                    str(_standin(tmp_path / "imageonly", "imageonly", "1.0"))], check=True)
    jobs = tmp_path / "jobs.txt"
    jobs.write_text("packaging\n")  # what the jobs need: here already in the image
    with pytest.raises(EngineBenchError, match="without replacing a package the container holds"):
        install(python, [container_install.SNAKEMAKE_REQUIREMENTS], tmp_path / "c.txt")
    before = freeze(python)
    assert before["packaging"] == "26.0" and before["pulp"] == "3.4.0" and "snakemake" not in before

    env = tmp_path / "smk"
    assert container_install.main(["--python", python, "-r", str(jobs), "--snakemake-env", str(env)]) == 0
    assert freeze(python) == before  # nothing of the image changed, nothing added to it
    (tmp_path / "wf").mkdir()
    (tmp_path / "wf" / "Snakefile").write_text(
        "import packaging, imageonly\n"
        "PARSE = f'{packaging.__version__} {imageonly.__version__}'\n"
        "rule all:\n    output: 'job.txt'\n"
        "    params: parse=PARSE\n"
        "    shell: \"python -c 'import sys, packaging; print(sys.prefix, packaging.__version__)' > {output};"
        " echo {params.parse} >> {output}\"\n")
    path = f"{image / 'bin'}:/usr/bin:/bin"  # the image's PATH: its python first; the env's bin is not on it
    done = subprocess.run([str(env / "bin" / "snakemake"), "--cores", "1", "-d", str(tmp_path / "wf"),
                           "-s", str(tmp_path / "wf" / "Snakefile")],
                          capture_output=True, text=True, env={"PATH": path, "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-2000:]
    job, parse = (tmp_path / "wf" / "job.txt").read_text().splitlines()
    assert job == f"{image} 26.0"  # the job: the image's python and packages
    own, image_only = parse.split()
    assert own.split(".")[0] == "25" and image_only == "1.0"  # the parse: Snakemake's packaging, the image's rest
