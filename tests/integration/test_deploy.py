"""Edge packaging, checked without a Docker engine: the Dockerfiles parse and copy what exists,
the package they install builds from exactly that build context and runs the command they (and
the systemd unit, and the README) start; the unit passes `systemd-analyze verify`."""

import configparser
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_video, moving_square_frames
from tests.support.wheel import build_wheel, install_wheel

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "configs" / "deploy"
DOCKERFILES = ("Dockerfile.cpu", "Dockerfile.nvidia")
COMMAND = ["run", "/etc/lookout/lookout.yaml", "--quiet"]

pytestmark = pytest.mark.slow


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending = f"{pending} {line[:-1]}" if line.endswith("\\") else f"{pending} {line}"
        if line.endswith("\\"):
            continue
        word, _, rest = pending.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        pending = ""
    assert not pending, f"{path.name}: dangling continuation"
    return out


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_parses_copies_what_exists_and_starts_the_readme_command(name: str) -> None:
    steps = instructions(DEPLOY / name)
    known = {
        "FROM",
        "RUN",
        "WORKDIR",
        "COPY",
        "ENV",
        "VOLUME",
        "USER",
        "EXPOSE",
        "ENTRYPOINT",
        "CMD",
        "ARG",
        "LABEL",
    }
    assert steps[0][0] == "FROM" and {s for s, _ in steps} <= known
    copied = [a.split()[:-1] for s, a in steps if s == "COPY"]
    for sources in copied:
        for src in sources:
            assert (REPO / src).exists(), f"{name} copies {src}, which is not in the repository"
    assert {"pyproject.toml", "engine", "models"} <= {s for c in copied for s in c}
    assert any("pip install" in a and " ." in a for s, a in steps if s == "RUN")
    entry = exec_form(next(a for s, a in steps if s == "ENTRYPOINT"))
    cmd = exec_form(next(a for s, a in steps if s == "CMD"))
    assert entry[-1] == "lookout" and cmd == COMMAND
    assert next(a for s, a in steps if s == "USER") != "root"
    readme = (REPO / "README.md").read_text()
    assert f"docker build -f configs/deploy/{name}" in readme
    assert "lookout " + " ".join(COMMAND) in readme


def test_systemd_unit_runs_the_same_command_and_verifies(tmp_path: Path) -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(DEPLOY / "lookout.service")
    service = unit["Service"]
    exec_start = shlex.split(service["ExecStart"])
    assert exec_start[0].endswith("/bin/lookout") and exec_start[1:] == COMMAND
    assert service["ExecReload"].endswith("-HUP $MAINPID") and service["KillSignal"] == "SIGTERM"
    assert service["User"] == "lookout" and unit["Install"]["WantedBy"] == "multi-user.target"
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed: the unit's syntax is not verified here")
    # verify the unit as written, the program path pointed at this interpreter's lookout
    text = (
        (DEPLOY / "lookout.service")
        .read_text()
        .replace(exec_start[0], str(Path(sys.executable).parent / "lookout"))
    )
    (tmp_path / "lookout.service").write_text(text)
    cmd = ["systemd-analyze", "verify", "--man=no", str(tmp_path / "lookout.service")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    problems = [line for line in proc.stderr.splitlines() if "lookout.service" in line]
    assert proc.returncode == 0 and not problems, proc.stderr


def test_the_image_build_context_installs_and_runs_the_command(tmp_path: Path) -> None:
    """What `COPY` puts in the image is enough: the package builds from it alone, installs,
    and `lookout run /etc/lookout/lookout.yaml --quiet` runs the bundled model to the end."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for step, args in instructions(DEPLOY / "Dockerfile.cpu"):
        if step == "COPY":
            *sources, _ = args.split()
            for src in sources:
                if (REPO / src).is_dir():
                    shutil.copytree(REPO / src, ctx / src, ignore=skip)
                else:
                    shutil.copy2(REPO / src, ctx / src)
    installed = install_wheel(build_wheel(ctx, tmp_path / "wheels"), tmp_path / "venv")
    etc = tmp_path / "etc" / "lookout"
    etc.mkdir(parents=True)
    clip = make_video(tmp_path / "clip.mp4", moving_square_frames(20))
    config = etc / "lookout.yaml"
    config.write_text(
        f"sources: [{{id: cam, type: file, path: '{clip}', rate: max}}]\n"
        f"detector: {{model: '{ctx / 'models' / 'lookout_sim_yolo11n.onnx'}'}}\n"
        f"outputs: [{{type: jsonl, path: '{tmp_path / 'alerts.jsonl'}'}}]\n"
    )
    args = [str(config) if a == str(Path(COMMAND[1])) else a for a in COMMAND]
    run = installed.run(*args, cwd=tmp_path, env={"LOOKOUT_STATE_DIR": str(tmp_path / "state")})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "done: 20 frames from 1 sources" in run.stderr
    # it ran the installed copy, not this checkout
    assert installed.engine_file(tmp_path).is_relative_to(installed.site_packages)
