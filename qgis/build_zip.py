"""Build the QGIS "Install from ZIP" archive of the geohsr Processing plugin.

    python qgis/build_zip.py [--out-dir dist]

writes ``dist/geohsr_processing-<version>.zip`` holding the folder ``geohsr_processing/``
(sources, metadata.txt, icon; no caches), the layout QGIS's Plugin Manager expects.
"""

from __future__ import annotations

import argparse
import configparser
import zipfile
from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parent / "geohsr_processing"
#: files of the plugin folder that go into the zip
INCLUDED_SUFFIXES = (".py", ".txt", ".svg", ".png", ".md")


def plugin_version(plugin_dir: Path = PLUGIN_DIR) -> str:
    """The ``version`` of the plugin's metadata.txt."""
    metadata = configparser.ConfigParser(interpolation=None)
    metadata.read(plugin_dir / "metadata.txt", encoding="utf-8")
    return metadata["general"]["version"]


def plugin_files(plugin_dir: Path = PLUGIN_DIR) -> list[Path]:
    """The files to ship, sorted (no ``__pycache__``, no compiled or hidden files)."""
    return sorted(
        path
        for path in plugin_dir.rglob("*")
        if path.is_file()
        and path.suffix in INCLUDED_SUFFIXES
        and not any(
            part.startswith((".", "__pycache__")) for part in path.relative_to(plugin_dir).parts
        )
    )


def build_zip(out_dir: Path, plugin_dir: Path = PLUGIN_DIR) -> Path:
    """Write the zip into ``out_dir``; returns its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{plugin_dir.name}-{plugin_version(plugin_dir)}.zip"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in plugin_files(plugin_dir):
            archive.write(path, (Path(plugin_dir.name) / path.relative_to(plugin_dir)).as_posix())
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=Path("dist"), help="[dist]")
    print(build_zip(parser.parse_args().out_dir))


if __name__ == "__main__":
    main()
