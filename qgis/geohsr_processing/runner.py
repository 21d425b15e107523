"""The QGIS-free half of the provider: find the ``geohsr`` executable, turn algorithm
parameters into its command lines, run it as a subprocess (progress, messages, cancel) and
turn its one-line ``Error: ...`` into :class:`GeohsrError`.

Standard library only: QGIS's Python never imports geohsr, torch or QGIS from here, so
this module is tested without QGIS.
"""

from __future__ import annotations

import csv
import json
import os
import queue
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: environment variable naming the executable (after the Processing setting)
EXECUTABLE_ENV = "GEOHSR_EXECUTABLE"
#: name of the Processing setting (Settings > Options > Processing > Providers > geohsr)
EXECUTABLE_SETTING = "GEOHSR_EXECUTABLE"
EXECUTABLE_NAMES = ("geohsr", "geohsr.exe")

#: the CLI's defaults (``geohsr reconstruct --help``; checked against geohsr by the tests)
DEFAULT_WEIGHTS = "mxr_unet18_rpr_cave"
DEFAULT_TILE = 512
DEFAULT_DEVICE = "auto"
OUTPUT_DTYPES = ("float32", "float16", "uint16")
INPUT_ENCODINGS = ("linear", "srgb")
DEFAULT_PREVIEW_COUNT = 4
#: output formats geohsr writes, by extension (the first is the default)
OUTPUT_EXTENSIONS = ("tif", "zarr")
#: the cube's wavelengths (nm) and the sample table's field names
WAVELENGTHS_NM = tuple(range(400, 701, 10))
SPECTRUM_FIELDS = tuple(f"nm_{nm}" for nm in WAVELENGTHS_NM)
#: seconds a cancelled run gets to stop after SIGTERM before it is killed
TERMINATE_GRACE_S = 10.0
#: variables of QGIS's own Python and GDAL/PROJ that would break the user's environment
CLEARED_ENV = (
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTHONEXECUTABLE",
    "GDAL_DATA",
    "GDAL_DRIVER_PATH",
    "PROJ_LIB",
    "PROJ_DATA",
)
#: how to set the executable, for error messages
HOW_TO_SET = (
    "install geohsr in a Python environment of your own (see geohsr's README), then set "
    "Settings > Options > Processing > Providers > geohsr > 'geohsr executable' to its path "
    "(`which geohsr` on Linux/macOS, `where geohsr` on Windows prints it, e.g. "
    "/home/me/.venv/bin/geohsr), or set the GEOHSR_EXECUTABLE environment variable, or put "
    "geohsr on the PATH QGIS is started with"
)


class GeohsrError(Exception):
    """geohsr could not be run or stopped with an error (the message says why)."""


#: the message when Cancel came as geohsr was publishing: it finished (exit code 0)
TOO_LATE_TO_CANCEL = "Cancel came as geohsr finished: its output is complete"


class Canceled(Exception):
    """The user cancelled the run; the subprocess was stopped."""


# --- executable discovery ----------------------------------------------------------------


def _executable_in(path: Path) -> Path | None:
    """``path`` itself when it is an executable file; for a folder (a venv, its bin or
    Scripts folder) the geohsr executable inside it."""
    if path.is_file():
        return path if os.access(path, os.X_OK) else None
    if path.is_dir():
        for folder in (path, path / "bin", path / "Scripts"):
            for name in EXECUTABLE_NAMES:
                candidate = folder / name
                if candidate.is_file() and os.access(candidate, os.X_OK):
                    return candidate
    return None


def find_executable(
    setting: str | None,
    environ: Mapping[str, str] | None = None,
    which: Callable[[str], str | None] = shutil.which,
) -> str:
    """The geohsr executable: the Processing ``setting``, else ``$GEOHSR_EXECUTABLE``, else
    ``geohsr`` on PATH. A setting or variable naming nothing usable is an error (never
    silently skipped); nothing found at all says how to set it."""
    environ = os.environ if environ is None else environ
    for origin, value in (
        ("the Processing setting 'geohsr executable'", setting),
        (f"the {EXECUTABLE_ENV} environment variable", environ.get(EXECUTABLE_ENV)),
    ):
        if value and value.strip():
            found = _executable_in(Path(value.strip()).expanduser())
            if found is None:
                raise GeohsrError(
                    f"{origin} is {value.strip()!r}, which is not an executable geohsr; "
                    f"fix it: {HOW_TO_SET}"
                )
            return str(found)
    on_path = which("geohsr")
    if on_path:
        return on_path
    raise GeohsrError(f"the geohsr executable was not found; {HOW_TO_SET}")


# --- parameters -> command lines ---------------------------------------------------------


@dataclass(frozen=True)
class ReconstructRequest:
    """The ``geohsr:reconstruct`` parameters (``None``/empty: the CLI's default)."""

    input: str
    output: str
    bands: str | None = None
    scale: float | None = None
    stretch: str | None = None
    camera: str | None = None
    weights: str = DEFAULT_WEIGHTS
    tile: int = DEFAULT_TILE
    overlap: int | None = None
    device: str = DEFAULT_DEVICE
    dtype: str = OUTPUT_DTYPES[0]
    input_encoding: str = INPUT_ENCODINGS[0]


def _numbers(text: str, count: int, name: str, *, percent: bool = False) -> str:
    """``text`` as ``count`` comma-separated numbers (``p`` prefixes dropped when
    ``percent``), normalised, or :class:`GeohsrError` saying what is expected."""
    parts = [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]
    if percent:
        parts = [part.lstrip("pP") for part in parts]
    try:
        values = [float(part) for part in parts]
    except ValueError:
        values = []
    if len(values) != count:
        raise GeohsrError(f"{name} needs {count} comma-separated numbers, got {text!r}")
    return ",".join(parts)


def check_bands(text: str) -> str:
    """``"3,2,1"``: three 1-based band numbers, or :class:`GeohsrError`."""
    bands = _numbers(text, 3, "BANDS (red,green,blue band numbers)")
    if not all(part.isdigit() and int(part) >= 1 for part in bands.split(",")):
        raise GeohsrError(f"BANDS needs three band numbers (1, 2, ...), got {text!r}")
    return bands


def reconstruct_command(executable: str, request: ReconstructRequest) -> list[str]:
    """``geohsr reconstruct`` for ``request``, with machine-readable progress and
    ``--overwrite`` (Processing replaces existing outputs, as its file dialog warned)."""
    if request.scale is not None and request.stretch:
        raise GeohsrError("give SCALE or STRETCH, not both")
    if not request.output.lower().endswith((".tif", ".tiff", ".zarr")):
        raise GeohsrError(f"OUTPUT must end in .tif or .zarr, got {request.output!r}")
    command = [executable, "reconstruct", request.input, request.output]
    command += ["--weights", request.weights or DEFAULT_WEIGHTS, "--tile", str(request.tile)]
    if request.overlap is not None:
        command += ["--overlap", str(request.overlap)]
    command += ["--device", request.device or DEFAULT_DEVICE, "--dtype", request.dtype]
    command += ["--input-encoding", request.input_encoding]
    if request.bands:
        command += ["--bands", check_bands(request.bands)]
    if request.scale is not None:
        command += ["--scale", repr(float(request.scale))]
    if request.stretch:
        command += ["--stretch", _numbers(request.stretch, 2, "STRETCH (low,high)", percent=True)]
    if request.camera:
        command += ["--camera", request.camera]
    return command + ["--overwrite", "--progress", "json"]


def parse_pixels(text: str | None) -> list[str]:
    """``"120,80; 300,210"`` -> ``["120,80", "300,210"]`` (column,row pairs)."""
    if not text or not text.strip():
        return []
    pixels = []
    for pair in text.replace(" ", "").split(";"):
        if pair:
            pixels.append(_numbers(pair, 2, "PIXELS (x,y;x,y...)"))
    if not all(part.isdigit() for pixel in pixels for part in pixel.split(",")):
        raise GeohsrError(f"PIXELS needs whole pixel numbers x,y;x,y..., got {text!r}")
    return pixels


def preview_command(
    executable: str,
    cube: str,
    output: str,
    rgb: str | None = None,
    pixels: str | None = None,
    count: int = DEFAULT_PREVIEW_COUNT,
) -> list[str]:
    """``geohsr preview CUBE OUT.png [--rgb RGB] [--pixels x,y ...] --count N``."""
    command = [executable, "preview", cube, output]
    if rgb:
        command += ["--rgb", rgb]
    for pixel in parse_pixels(pixels):
        command += ["--pixels", pixel]
    return command + ["--count", str(count)]


def sample_command(
    executable: str, cube: str, points_csv: str, output_csv: str, crs: str
) -> list[str]:
    """``geohsr sample CUBE POINTS.csv OUT.csv --crs CRS``."""
    command = [executable, "sample", cube, points_csv, output_csv]
    return command + (["--crs", crs] if crs else [])


def cube_path(source: str) -> str:
    """The cube file of a QGIS raster source: ``ZARR:"/x/cube.zarr":/reflectance`` ->
    ``/x/cube.zarr``; ``/x/cube.tif|option`` -> ``/x/cube.tif``."""
    source = source.split("|")[0]
    if source.upper().startswith("ZARR:"):
        rest = source[5:]
        if rest.startswith('"'):
            return rest[1:].split('"')[0]
        return rest.split(":/")[0]
    return source


def zarr_layer_source(path: str) -> str:
    """The GDAL source of a Zarr cube's 31-band array (what QGIS opens)."""
    return f'ZARR:"{path}":/reflectance'


def partial_paths(output: str) -> tuple[Path, ...]:
    """The scratch files an unfinished geohsr run on ``output`` leaves (its lock files are
    removed by geohsr itself on SIGTERM, and left harmless, unlocked, after a kill)."""
    path = Path(output)
    return tuple(path.with_name(path.name + suffix) for suffix in (".partial", ".partial.cog"))


def remove_partials(output: str) -> list[Path]:
    """Delete the scratch files of a cancelled run on ``output`` (call it once the process
    has ended; the plugin always runs with --overwrite, so they could never be resumed);
    the paths removed."""
    removed = []
    for path in partial_paths(output):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists() or path.is_symlink():
            path.unlink()
        else:
            continue
        removed.append(path)
    return removed


# --- sample_spectra tables ----------------------------------------------------------------


def write_points_csv(points: Iterable[tuple[int, float | None, float | None]], path: str) -> int:
    """Write ``(fid, x, y)`` rows (``None`` coordinates: no point) as the CSV ``geohsr
    sample`` reads; the number of rows."""
    count = 0
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(["fid", "x", "y"])
        for fid, x, y in points:
            writer.writerow([fid, "" if x is None else repr(x), "" if y is None else repr(y)])
            count += 1
    return count


def read_spectra_csv(path: str) -> dict[int, list[float | None]]:
    """``fid -> 31 values`` (``None`` where empty) from ``geohsr sample``'s output."""
    spectra = {}
    with open(path, newline="", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            values = [row.get(name, "") for name in SPECTRUM_FIELDS]
            spectra[int(row["fid"])] = [float(v) if v not in ("", None) else None for v in values]
    return spectra


# --- output lines -------------------------------------------------------------------------


def parse_progress(line: str) -> float | None:
    """The percentage (0-100) of a ``{"done": n, "total": m}`` line, else ``None``."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
        done, total = float(record["done"]), float(record["total"])
    except (ValueError, KeyError, TypeError):
        return None
    if total <= 0:
        return 100.0
    return max(0.0, min(100.0, 100.0 * done / total))


def error_message(stderr_lines: Sequence[str], returncode: int, command: Sequence[str]) -> str:
    """The message of a failed run: geohsr's last ``Error: ...`` line (with a hint when the
    geohsr is too old for an option or command), else the last lines of its output."""
    errors = [line.strip()[6:].strip() for line in stderr_lines if line.startswith("Error:")]
    if errors:
        message = errors[-1]
        if "No such option" in message or "No such command" in message:
            message += f" (the geohsr at {command[0]} is older than this plugin: upgrade it)"
        return message
    tail = [line.rstrip() for line in stderr_lines if line.strip()][-5:]
    detail = "\n".join(tail) if tail else "no message"
    return f"geohsr stopped with exit code {returncode}:\n{detail}"


# --- running ------------------------------------------------------------------------------


@dataclass
class RunResult:
    """A finished run: exit code and its output lines (progress lines left out)."""

    returncode: int
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)


def child_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for geohsr: QGIS's Python/GDAL/PROJ variables removed, unbuffered
    UTF-8 output."""
    env = dict(os.environ if environ is None else environ)
    for name in CLEARED_ENV:
        env.pop(name, None)
    env.update(PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")
    return env


def _pump(stream, name: str, lines: queue.Queue) -> None:
    """Put each line of ``stream`` on ``lines`` as ``(name, line)``, then ``(name, None)``."""
    for line in iter(stream.readline, ""):
        lines.put((name, line.rstrip("\r\n")))
    lines.put((name, None))


def stop_process(process: subprocess.Popen, grace_s: float = TERMINATE_GRACE_S) -> None:
    """SIGTERM (geohsr then releases its lock and leaves only scratch files), then kill if
    it has not ended within ``grace_s``; returns once it has ended."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_geohsr(
    command: Sequence[str],
    *,
    on_progress: Callable[[float], None] = lambda percent: None,
    on_message: Callable[[str], None] = lambda line: None,
    is_canceled: Callable[[], bool] = lambda: False,
    poll_s: float = 0.1,
    grace_s: float = TERMINATE_GRACE_S,
    environ: Mapping[str, str] | None = None,
) -> RunResult:
    """Run ``command``: progress lines go to ``on_progress`` (percent), other lines to
    ``on_message``; ``is_canceled()`` is polled and stops the process (:class:`Canceled`,
    unless it had finished: geohsr holds a stop that comes as it publishes its output
    until it is complete, then exits 0). Exit code 0 returns the result; anything else
    raises :class:`GeohsrError` with geohsr's message. Callbacks run in the calling thread."""
    try:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=child_environment(environ),
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
        )
    except OSError as err:
        raise GeohsrError(f"cannot run {command[0]}: {err}; {HOW_TO_SET}") from err
    lines: queue.Queue = queue.Queue()
    readers = [
        threading.Thread(target=_pump, args=(stream, name, lines), daemon=True)
        for stream, name in ((process.stdout, "stdout"), (process.stderr, "stderr"))
    ]
    for reader in readers:
        reader.start()
    result = RunResult(returncode=-1)
    open_streams = 2
    stopped = False
    try:
        while open_streams:
            if not stopped and is_canceled():
                stop_process(process, grace_s)
                if process.returncode != 0:
                    raise Canceled(f"{command[0]} {command[1]} was cancelled")
                stopped = True  # it had finished: read what it printed, as after any run
                on_message(TOO_LATE_TO_CANCEL)
            try:
                name, line = lines.get(timeout=poll_s)
            except queue.Empty:
                continue
            if line is None:
                open_streams -= 1
                continue
            percent = parse_progress(line) if name == "stderr" else None
            if percent is not None:
                on_progress(percent)
                continue
            getattr(result, name).append(line)
            on_message(line)
        result.returncode = _wait(process, is_canceled, poll_s, grace_s) if not stopped else 0
    finally:
        if process.poll() is None:  # an exception in a callback: never leave it running
            stop_process(process, grace_s)
        for stream in (process.stdout, process.stderr):
            stream.close()
    if result.returncode != 0:
        raise GeohsrError(error_message(result.stderr, result.returncode, command))
    return result


def _wait(
    process: subprocess.Popen, is_canceled: Callable[[], bool], poll_s: float, grace_s: float
) -> int:
    """The exit code of ``process`` (whose output has ended), still honouring cancel."""
    while True:
        try:
            return process.wait(timeout=poll_s)
        except subprocess.TimeoutExpired:
            if is_canceled():
                stop_process(process, grace_s)
                if process.returncode != 0:
                    raise Canceled("cancelled") from None
