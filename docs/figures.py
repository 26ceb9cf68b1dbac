"""Write the figures of docs/talk.md (docs/*.png) from a talk study, with the report's own figure code.

    python docs/figures.py --db results/talk.sqlite [--study 1] [--only talk|cliffs]

``cliffs`` (docs/cliffs.md) needs a study with the cliff and the LSTM and clipped variants: the
``talk`` suite, or the ``clipping`` suite alone.
"""

from __future__ import annotations

import argparse
import os

from descentlab.report import clipping, curves, frames, profiles, sensitivity, trajectories

HERE = os.path.dirname(os.path.abspath(__file__))


def talk(study: frames.Frames) -> dict[str, bytes]:
    beale = study.problems["beale"]
    paths = trajectories.replay(list(study.chosen["beale"].values()), beale["population"])
    return {
        "talk-beale.png": trajectories.picture("beale", beale["problem"], paths, tuple(paths[0].points[0])),
        "talk-lstm-curves.png": curves.figure("lstm_lm", study.problems["lstm_lm"], study.seed_curves["lstm_lm"]),
        "talk-word2vec-lr.png": sensitivity.figure("word2vec", study.problems["word2vec"]),
        "talk-profile.png": profiles.figure(study.summary["profile"]),
    }


def cliffs(study: frames.Frames) -> dict[str, bytes]:
    return {"cliffs-paths.png": clipping.figure(study, "cliff"),
            "cliffs-lstm-lr.png": sensitivity.figure("lstm_lm", study.problems["lstm_lm"]),
            "cliffs-lstm-curves.png": curves.figure("lstm_lm", study.problems["lstm_lm"],
                                                    study.seed_curves["lstm_lm"])}


GROUPS = {"talk": talk, "cliffs": cliffs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="a store holding a study of the talk suite")
    parser.add_argument("--study", type=int, help="study id (default: the latest)")
    parser.add_argument("--only", choices=GROUPS, help="one group of figures (default: both)")
    args = parser.parse_args()
    study = frames.load(args.db, args.study)
    groups = [args.only] if args.only else list(GROUPS)
    drawn = {name: png for group in groups for name, png in GROUPS[group](study).items()}
    for name, png in drawn.items():
        with open(os.path.join(HERE, name), "wb") as handle:
            handle.write(png)
        print(f"wrote docs/{name} ({len(png) // 1024} KB)")


if __name__ == "__main__":
    main()
