"""Write the model card ``<weights>.md`` beside each weights file, from its metadata and the
accuracy JSON of ``benchmarks/accuracy.py`` (no number typed by hand)::

    python benchmarks/accuracy.py --out accuracy.json
    python benchmarks/write_model_card.py --accuracy accuracy.json              # every shipped
    python benchmarks/write_model_card.py --accuracy accuracy.json mxr_unet18_rpr_cave
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from geohsr.models.weights import list_shipped_weights, resolve_weights
from geohsr.training.model_card import render_model_card


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", nargs="*", help="shipped names or paths [all shipped]")
    parser.add_argument("--accuracy", type=Path, required=True, help="accuracy.py --out JSON")
    args = parser.parse_args()
    accuracy = json.loads(args.accuracy.read_text())
    for spec in args.weights or list_shipped_weights():
        path = resolve_weights(spec)
        card = path.with_suffix(".md")
        card.write_text(render_model_card(path, accuracy))
        print(card)


if __name__ == "__main__":
    main()
