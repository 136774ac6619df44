r"""Run a baseline's own upstream code, at a pinned commit, in its own Python environment.

Some baselines (MotionCtrl-SVD on ``sgm``, Motion-I2V on AnimateDiff/diffusers 0.11) pin old
torch/xformers/diffusers versions that cannot share an interpreter with this project. Their
adapters therefore run a small *driver* script with the upstream environment's interpreter:

1. the adapter writes the inputs, in the upstream code's own formats, and a ``settings.json``
   into a fresh temporary work directory;
2. :meth:`UpstreamRunner.run` starts ``<python> <driver> <workdir>`` with the upstream checkout
   as working directory (upstream code loads configs and weights by relative paths), under a
   time limit, logging stdout and stderr to ``<workdir>/driver.log``;
3. the driver writes ``<workdir>/frames/000000.png, ...``; they are read back and their count
   and size checked.

The checkout and environment live at ``$TRAJBENCH_UPSTREAM/<name>/{repo,env}`` (default
``~/.cache/trajbench/upstream/<name>``), where the set-up scripts in ``scripts/`` put them.
Anything missing raises :class:`methods.base.MethodUnavailable` naming the script to run.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from methods.base import Method, MethodUnavailable

logger = logging.getLogger(__name__)

#: The project root (scripts/ and methods/upstream_drivers/ live under it).
PROJECT_ROOT = Path(__file__).resolve().parents[1]
DRIVERS_DIR = Path(__file__).resolve().parent / "upstream_drivers"
#: How many characters of the driver log an error message carries.
LOG_TAIL_CHARS = 3000
#: File name of the conditioning image in the work dir (lossless PNG, RGB).
IMAGE_FILE = "image.png"


class UpstreamError(RuntimeError):
    """The upstream driver ran but failed (non-zero exit, time-out or unusable output)."""


@dataclass(frozen=True)
class UpstreamSpec:
    r"""What an adapter runs: one upstream repository at one commit.

    Args:
        name: folder name under the upstream root (``motionctrl``, ``motion_i2v``).
        repository: ``owner/name`` on GitHub.
        commit: the pinned commit the driver was written against.
        setup_script: project-relative path of the script that installs checkout, env and
            weights (named in every "unavailable" message).
        required: files or folders relative to the checkout that must exist (upstream code
            and weights), each with a short description for the error message.
    """

    name: str
    repository: str
    commit: str
    setup_script: str
    required: tuple[tuple[str, str], ...] = ()


def upstream_root() -> Path:
    """``$TRAJBENCH_UPSTREAM`` when set, else ``~/.cache/trajbench/upstream``."""
    env = os.environ.get("TRAJBENCH_UPSTREAM")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "trajbench" / "upstream"


def default_repo_dir(name: str) -> Path:
    """Where the set-up script clones upstream ``name``."""
    return upstream_root() / name / "repo"


def default_python(name: str) -> Path:
    """The interpreter of the environment the set-up script creates for ``name``."""
    return upstream_root() / name / "env" / "bin" / "python"


def log_tail(text: str, chars: int = LOG_TAIL_CHARS) -> str:
    """The last ``chars`` characters of ``text`` (marked when cut)."""
    return text if len(text) <= chars else "[...]\n" + text[-chars:]


def read_frames(folder: Path, num_frames: int, width: int, height: int) -> np.ndarray:
    r"""Read ``folder/*.png`` (sorted by name) as uint8 RGB and check count and size.

    Returns:
        (num_frames, height, width, 3) uint8. Raises UpstreamError otherwise.
    """
    files = sorted(folder.glob("*.png")) if folder.is_dir() else []
    if len(files) != num_frames:
        raise UpstreamError(
            f"expected {num_frames} PNG frames in {folder}, found {len(files)}"
        )
    frames = []
    for file in files:
        with Image.open(file) as im:
            if im.size != (width, height):
                raise UpstreamError(
                    f"{file.name} is {im.size[0]}x{im.size[1]}, expected {width}x{height}"
                )
            frames.append(np.asarray(im.convert("RGB"), dtype=np.uint8))
    return np.stack(frames)


@dataclass
class UpstreamRun:
    """Frames read back from one driver run, the driver's log and the kept work dir."""

    frames: np.ndarray
    log: str
    workdir: Path | None


class UpstreamRunner:
    r"""Runs a driver script for ``spec`` with the upstream interpreter.

    Args:
        spec: the upstream repository and what it needs.
        repo_dir: upstream checkout; None: :func:`default_repo_dir`.
        python: interpreter of the upstream environment; None: :func:`default_python`.
        driver: the driver script; a bare file name is looked up in ``upstream_drivers/``.
        timeout_s: wall-clock limit of one run (the process group is killed after it).
        keep_workdir: keep the work dir after a successful run (it is always kept after a
            failure, and its path is in the error).
    """

    def __init__(
        self,
        spec: UpstreamSpec,
        repo_dir: str | os.PathLike | None,
        python: str | os.PathLike | None,
        driver: str | os.PathLike,
        timeout_s: float,
        keep_workdir: bool = False,
    ) -> None:
        self.spec = spec
        self.repo_dir = Path(repo_dir).expanduser() if repo_dir else default_repo_dir(spec.name)
        self.python = Path(python).expanduser() if python else default_python(spec.name)
        driver = Path(driver).expanduser()
        if not driver.is_absolute() and driver.parent == Path("."):
            driver = DRIVERS_DIR / driver
        self.driver = driver
        self.timeout_s = float(timeout_s)
        self.keep_workdir = bool(keep_workdir)

    def _unavailable(self, what: str) -> MethodUnavailable:
        spec = self.spec
        return MethodUnavailable(
            f"{spec.name} needs {what}. Install the upstream code ({spec.repository} at commit "
            f"{spec.commit}), its environment and weights on the GPU machine with "
            f"`bash {spec.setup_script}` (it installs to {upstream_root() / spec.name}; set "
            "TRAJBENCH_UPSTREAM to choose another root), or point the preset's repo_dir/python "
            "options at an existing installation"
        )

    def check_installed(self, extra_required: Sequence[tuple[str, str]] = ()) -> None:
        """Raise MethodUnavailable (naming the set-up script) when the checkout, the
        interpreter, a required file or the driver is missing."""
        if not self.repo_dir.is_dir():
            raise self._unavailable(f"the upstream checkout at {self.repo_dir} (not found)")
        if not self.python.exists():
            raise self._unavailable(
                f"the upstream environment's interpreter {self.python} (not found)"
            )
        for rel, what in (*self.spec.required, *extra_required):
            if not (self.repo_dir / rel).exists():
                raise self._unavailable(f"{what} at {self.repo_dir / rel} (not found)")
        if not self.driver.is_file():
            raise MethodUnavailable(
                f"{self.spec.name} needs its driver script {self.driver} (not found): provide "
                "an existing file as the `driver` option"
            )

    def checkout_commit(self) -> str | None:
        """The commit the checkout is at (read from ``.git``; None when not a git checkout)."""
        git = self.repo_dir / ".git"
        try:
            head = (git / "HEAD").read_text().strip()
            if not head.startswith("ref:"):
                return head
            ref = head.split(None, 1)[1]
            ref_file = git / ref
            if ref_file.is_file():
                return ref_file.read_text().strip()
            for line in (git / "packed-refs").read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split()[0]
        except OSError:
            return None
        return None

    def run(
        self,
        write_inputs: Callable[[Path], None],
        settings: dict[str, Any],
        num_frames: int,
        width: int,
        height: int,
    ) -> UpstreamRun:
        r"""Write inputs, run the driver, read the frames back.

        Args:
            write_inputs: writes the upstream-format input files into the work dir it is given.
            settings: JSON-able settings for the driver (``settings.json``); the runner adds
                ``repo_dir``, ``num_frames``, ``width``, ``height`` and ``frames_dir``.
            num_frames, width, height: what the driver must write.

        Returns:
            UpstreamRun with (num_frames, height, width, 3) uint8 frames.
        """
        workdir = Path(tempfile.mkdtemp(prefix=f"trajbench-{self.spec.name}-"))
        frames_dir = workdir / "frames"
        log_file = workdir / "driver.log"
        write_inputs(workdir)
        full = {
            **settings,
            "repo_dir": str(self.repo_dir),
            "num_frames": int(num_frames),
            "width": int(width),
            "height": int(height),
            "frames_dir": str(frames_dir),
        }
        (workdir / "settings.json").write_text(json.dumps(full, indent=1))
        cmd = [str(self.python), str(self.driver), str(workdir)]
        logger.info("running %s (cwd %s)", " ".join(cmd), self.repo_dir)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(log_file, "wb") as log:
            proc = subprocess.Popen(
                cmd, cwd=self.repo_dir, stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True,
            )
            try:
                code = proc.wait(timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                code = None
        text = log_file.read_text(errors="replace")
        if code is None:
            raise UpstreamError(
                f"{self.spec.name} driver timed out after {self.timeout_s:g} s (work dir kept: "
                f"{workdir}); log tail:\n{log_tail(text)}"
            )
        if code != 0:
            raise UpstreamError(
                f"{self.spec.name} driver exited with status {code} (work dir kept: {workdir}); "
                f"log tail:\n{log_tail(text)}"
            )
        try:
            frames = read_frames(frames_dir, num_frames, width, height)
        except UpstreamError as exc:
            raise UpstreamError(
                f"{self.spec.name} driver output unusable: {exc} (work dir kept: {workdir}); "
                f"log tail:\n{log_tail(text)}"
            ) from exc
        if self.keep_workdir:
            return UpstreamRun(frames, text, workdir)
        shutil.rmtree(workdir, ignore_errors=True)
        return UpstreamRun(frames, text, None)


def runner_options(driver: str) -> dict[str, Any]:
    """The options every upstream adapter has (where the checkout, its interpreter and the
    driver are, how long a clip may take), for its ``default_conf``."""
    return {
        "repo_dir": None,  # upstream checkout; null: $TRAJBENCH_UPSTREAM/<method>/repo
        "python": None,  # upstream env interpreter; null: .../<method>/env/bin/python
        "driver": driver,  # file in methods/upstream_drivers/, or a path
        "timeout_s": 1800,  # one clip, including model loading
        "keep_workdir": False,  # keep the driver's inputs/outputs after a successful run
    }


class UpstreamMethod(Method):
    """An adapter that runs upstream code through :class:`UpstreamRunner` (``spec``)."""

    spec: ClassVar[UpstreamSpec]

    def runner(self) -> UpstreamRunner:
        """The upstream runner configured from this preset."""
        c = self.conf
        return UpstreamRunner(
            self.spec, c["repo_dir"], c["python"], c["driver"], c["timeout_s"],
            keep_workdir=c["keep_workdir"],
        )
