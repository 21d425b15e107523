"""Per-scene result records and the run summary (printed and written as JSON)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from geohsr.io.output import write_text_atomically

#: file name of the JSON report written into the output folder
REPORT_FILENAME = "geohsr_batch_report.json"

SceneStatus = Literal["done", "skipped", "failed"]
STATUSES: tuple[SceneStatus, ...] = ("done", "skipped", "failed")


@dataclass
class SceneRecord:
    """What happened to one scene.

    ``seconds`` is the worker time spent on the scene (0 when skipped); ``megapixels`` is
    the scene size (height x width / 1e6) when known; ``error`` is a one-line message for
    failed scenes and ``traceback`` the full trace when the error was not a GeoHSRError;
    ``inference`` is the backend and precision that computed a done scene (e.g.
    ``openvino fp32``: the cube's ``inference`` attribute; for a scene split into chunks,
    what its chunks ran); ``replaced`` names the settings (weights_sha256, camera_response,
    tile, overlap, encoding) in which the complete output of an earlier run differed, so that this
    run redid the scene.
    """

    scene: str
    source: str
    output: str
    status: SceneStatus
    error: str | None = None
    seconds: float = 0.0
    megapixels: float = 0.0
    worker: str | None = None
    traceback: str | None = None
    inference: str | None = None
    replaced: str | None = None


@dataclass
class BatchReport:
    """All scene records of a run plus its wall time (seconds) and cluster facts."""

    records: list[SceneRecord]
    wall_seconds: float
    n_workers: int
    scheduler: str
    weights: str
    started_at: str
    extra: dict[str, Any] = field(default_factory=dict)
    #: where :func:`~geohsr.batch.batch_reconstruct` wrote it (``None``: not written)
    path: Path | None = None

    def with_status(self, status: SceneStatus) -> list[SceneRecord]:
        """Records whose status is ``status``, in input order."""
        return [record for record in self.records if record.status == status]

    @property
    def counts(self) -> dict[str, int]:
        """Number of scenes per status (``done``, ``skipped``, ``failed``)."""
        return {status: len(self.with_status(status)) for status in STATUSES}

    @property
    def megapixels_done(self) -> float:
        """Megapixels reconstructed in this run (skipped scenes not counted)."""
        return sum(record.megapixels for record in self.with_status("done"))

    @property
    def megapixels_per_second(self) -> float:
        """Throughput of this run: reconstructed megapixels per wall-clock second."""
        return self.megapixels_done / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        """True when no scene failed."""
        return not self.with_status("failed")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary: summary figures first, then one entry per scene."""
        return {
            "summary": {
                **self.counts,
                "total": len(self.records),
                "wall_seconds": round(self.wall_seconds, 3),
                "megapixels_done": round(self.megapixels_done, 6),
                "megapixels_per_second": round(self.megapixels_per_second, 6),
            },
            "n_workers": self.n_workers,
            "scheduler": self.scheduler,
            "weights": self.weights,
            "started_at": self.started_at,
            **self.extra,
            "scenes": [asdict(record) for record in self.records],
        }

    def write_json(self, out_dir: str | Path) -> Path:
        """Write the report to ``<out_dir>/geohsr_batch_report.json`` atomically (mode 0666
        minus the umask); its path. Raises :class:`OutputError` when it cannot be written."""
        path = Path(out_dir) / REPORT_FILENAME
        write_text_atomically(path, json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    def summary_text(self) -> str:
        """A few human-readable lines: counts, time, throughput, each scene redone because its
        earlier output was made with other settings, and each failure."""
        counts = self.counts
        lines = [
            f"{counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed "
            f"in {self.wall_seconds:.1f} s ({self.megapixels_done:.2f} MP, "
            f"{self.megapixels_per_second:.3f} MP/s, {self.n_workers} worker(s))"
        ]
        lines += [
            f"  redid {record.scene}: its earlier output had another {record.replaced}"
            for record in self.records
            if record.replaced
        ]
        failed = self.with_status("failed")
        lines += [f"  failed {record.scene}: {record.error}" for record in failed]
        return "\n".join(lines)
