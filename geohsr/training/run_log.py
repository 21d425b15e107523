"""Metrics log (JSON lines) and the loss-curve plot of a training run.

Each line is one event: ``{"event": "train", "step", "loss", "lr", "elapsed_s"}`` (mean loss
over the last ``log_every`` steps; the learning rate the last of them trained with, of the
last parameter group) or ``{"event": "val", "step", "epoch", "mrae", "rmse",
"psnr", "sam", ...}``. A resumed run appends to the same file from its checkpoint's step
(events logged after the checkpoint by the stopped session are dropped first).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class MetricsLog:
    """Append-only JSON-lines log."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, event: str, **values: Any) -> None:
        """Append one event line."""
        with open(self.path, "a") as fh:
            fh.write(json.dumps({"event": event, **values}) + "\n")

    def keep_until(self, step: int) -> None:
        """Drop the events after ``step`` (a session starting there: a fresh run at 0, a
        resume at its checkpoint, after which a stopped session may have logged more).
        A line cut short by a kill is dropped too."""
        if not self.path.is_file():
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("step", 0) <= step:
                kept.append(line + "\n")
        self.path.write_text("".join(kept))

    def read(self) -> list[dict[str, Any]]:
        """All events, in order (empty if the file does not exist)."""
        if not self.path.is_file():
            return []
        with open(self.path) as fh:
            return [json.loads(line) for line in fh if line.strip()]


def _latest_by_step(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    by_step: dict[int, dict[str, Any]] = {}
    for event in events:
        if event["event"] == kind:
            by_step[event["step"]] = event
    return [by_step[s] for s in sorted(by_step)]


def plot_loss_curve(log: MetricsLog, png_path: Path) -> Path:
    """Training loss (log scale) and validation MRAE against step, saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    events = log.read()
    train = _latest_by_step(events, "train")
    val = _latest_by_step(events, "val")
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot([e["step"] for e in train], [e["loss"] for e in train], color="tab:blue", lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss", color="tab:blue")
    ax.set_yscale("log")
    if val:
        ax2 = ax.twinx()
        ax2.plot([e["step"] for e in val], [e["mrae"] for e in val], "o-", color="tab:red", ms=3)
        ax2.set_ylabel("validation MRAE", color="tab:red")
    ax.set_title("geohsr fine-tuning")
    fig.tight_layout()
    fig.savefig(png_path)
    plt.close(fig)
    return png_path
