"""Train / validation / test splits: random for independent rows, time-ordered for windows.

Rows of a tabular CSV are taken as independent, so they are split at random (``random``):
normal rows are shuffled into train, validation and test, and every anomalous row is tested.

Windows of a series (``data.sliding_windows``) are not independent: neighbours share all but
one reading, so a random split tests on windows the model has in effect seen. They are split
in time order (``time_ordered``): the readings are cut into an early train part, a validation
part and a late test part, with ``gap`` unused readings (at least one window length) between
parts. A window belongs to a part when all its readings lie inside it; windows overlapping a
boundary or a gap are dropped, so no two windows of different parts share a reading.

In both, anomalous rows (label 1) never train and the validation rows (where the threshold is
chosen) are normal ones; the test rows of a time-ordered split are the whole test part.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .distribution import split_normal

MIN_TRAIN = 16


class SplitError(ValueError):
    """The data is too small (or the options inconsistent) to split as asked."""


@dataclass
class Split:
    kind: str  # "random" or "time_ordered"
    train: np.ndarray  # indices of the rows trained on (normal only)
    val: np.ndarray  # indices the threshold is chosen on (normal only)
    test: np.ndarray  # indices evaluated on: normal and anomalous
    info: dict  # what metadata.json records about the split, besides the sizes

    def sizes(self, labels: np.ndarray) -> dict:
        test_labels = labels[self.test]
        return {
            "train_normal": int(len(self.train)),
            "val_normal": int(len(self.val)),
            "test_normal": int((test_labels == 0).sum()),
            "test_anomalies": int((test_labels == 1).sum()),
        }


def random_split(labels: np.ndarray, rng: np.random.Generator, val_fraction: float,
                 test_fraction: float) -> Split:
    """``distribution.split_normal`` (one permutation of ``rng``, so a seed reproduces it); the
    test rows are the held-out normal rows followed by every anomalous row."""
    try:
        val, test_normal, train = split_normal(labels, rng, val_fraction, test_fraction)
    except ValueError as e:
        raise SplitError(str(e)) from None
    test = np.concatenate([test_normal, np.flatnonzero(labels == 1)])
    return Split("random", train, val, test, {"kind": "random"})


def time_split(labels: np.ndarray, window: int, val_fraction: float, test_fraction: float,
               gap: int | None = None) -> Split:
    """Window ``i`` covers readings ``i .. i+window-1`` (``sliding_windows``'s order); the
    series has ``len(labels) + window - 1`` readings. ``gap`` defaults to ``window``."""
    gap = window if gap is None else gap
    if window < 1:
        raise SplitError(f"window {window} must be positive")
    if gap < window:
        raise SplitError(f"gap {gap} must be at least the window length {window}")
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise SplitError(f"fractions val {val_fraction}, test {test_fraction} must be in (0, 1) "
                         "and sum to less than 1")
    n_windows = len(labels)
    readings = n_windows + window - 1
    usable = readings - 2 * gap
    n_val, n_test = int(usable * val_fraction), int(usable * test_fraction)
    if min(n_val, n_test) < window or usable - n_val - n_test < window:
        raise SplitError(f"series of {readings} readings too short for a time-ordered split "
                         f"with window {window} and gap {gap}")
    # Reading ranges [start, end) of the three parts, latest last.
    test_start = readings - n_test
    val_end = test_start - gap
    val_start = val_end - n_val
    train_end = val_start - gap
    starts = np.arange(n_windows)
    ends = starts + window  # one past the window's last reading

    def part(lo, hi):
        return starts[(starts >= lo) & (ends <= hi)]

    train_all, val_all, test = part(0, train_end), part(val_start, val_end), part(test_start,
                                                                                readings)
    train = train_all[labels[train_all] == 0]
    val = val_all[labels[val_all] == 0]
    if len(train) < MIN_TRAIN or len(val) == 0:
        raise SplitError(f"too few normal windows to train ({len(train)}) or to choose a "
                         f"threshold on ({len(val)})")
    info = {
        "kind": "time_ordered",
        "window": int(window),
        "gap": int(gap),
        "readings": int(readings),
        "parts": {  # reading ranges, end exclusive
            "train": [0, int(train_end)],
            "val": [int(val_start), int(val_end)],
            "test": [int(test_start), int(readings)],
        },
        "windows": {"train": int(len(train_all)), "val": int(len(val_all)),
                    "test": int(len(test)),
                    "dropped_at_boundaries": int(n_windows - len(train_all) - len(val_all)
                                                 - len(test))},
        "anomalous_windows_not_trained": int(len(train_all) - len(train)),
        "anomalous_windows_not_in_threshold": int(len(val_all) - len(val)),
    }
    return Split("time_ordered", train, val, test, info)
