"""Every command of the README's "Working with the pipeline" block runs twice in a row (dry runs, on the
tiny config as the working folder's default config and as `my.yaml`), the second time after a first run
has left results/report.md behind."""

import re
import shlex
import subprocess

import yaml
from snakemake_run import REPO, SNAKEMAKE
from test_workflow import tiny_config


def readme_commands() -> list[list[str]]:
    text = (REPO / "README.md").read_text()
    block = re.split(r"\n#+ ", text.split("\n## Working with the pipeline\n", 1)[1], maxsplit=1)[0]
    lines = re.sub(r"\\\n\s*", "", block).splitlines()  # join continued lines
    commands = [line.split("#", 1)[0].strip() for line in lines if line.startswith("    ")]
    return [shlex.split(c) for c in commands if c]


def test_the_block_holds_the_documented_commands():
    commands = readme_commands()
    assert commands[0] == ["source", ".venv/bin/activate"]
    assert len(commands) >= 6 and all(c[0] == "snakemake" for c in commands[1:])
    assert any("--configfile" in c for c in commands) and any("--forcerun" in c for c in commands)


def test_every_readme_command_runs_twice(tmp_path):
    (tmp_path / "config").mkdir()
    config = tiny_config("/nonexistent/tiny")  # a dry run reads no model
    for path in (tmp_path / "config" / "config.yaml", tmp_path / "my.yaml"):
        path.write_text(yaml.safe_dump(config, sort_keys=False))
    words = {"gemma3-270m": "tiny", "torch-bf16": "fp32"}  # the default config's slugs, the tiny config's
    commands = [[SNAKEMAKE, "-s", str(REPO / "Snakefile"), *[re.sub("|".join(words), lambda m: words[m[0]], w)
                                                             for w in c[1:]]]
                for c in readme_commands()[1:]]
    for run in (1, 2):
        for cmd in commands:
            dry = cmd if "-n" in cmd else [*cmd[:3], "-n", *cmd[3:]]
            done = subprocess.run(dry, cwd=tmp_path, capture_output=True, text=True)
            assert done.returncode == 0, f"run {run}: {shlex.join(cmd[3:])}: {(done.stdout + done.stderr)[-2000:]}"
        (tmp_path / "results").mkdir(exist_ok=True)
        (tmp_path / "results" / "report.md").write_text("a report from a first run\n")
