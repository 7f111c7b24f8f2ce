"""``python -m pipelines.stamp CONFIG STAMP SECTION...``: for the Makefile, rewrite STAMP only when those sections
of the experiment config changed, so ``make all`` re-runs just the stages whose settings moved (a new model
config re-trains, it does not re-prepare)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

from forecast.atomic import write_then_rename


def main(argv: list[str]) -> int:
    config, stamp, sections = Path(argv[0]), Path(argv[1]), argv[2:]
    settings = yaml.safe_load(config.read_text()) or {}
    text = json.dumps({name: settings.get(name) for name in sections}, sort_keys=True, indent=1) + "\n"
    if not stamp.exists() or stamp.read_text() != text:
        write_then_rename(stamp, lambda tmp: tmp.write_text(text))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
