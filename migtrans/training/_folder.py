"""`RunFolder`: the layout of a run folder, the one place that names its files. Training writes through it,
`open_run` checks through it, and explain and reports read through it (a report's ``run/`` copy too)."""

from __future__ import annotations

from pathlib import Path


class FoldFolder:
    """``folds/<k>/`` of a run: one fold's model, preprocessing, learning curve, predictions and subject lists."""

    MODEL = "model.pt"  # MIGTrans state dict (plain tensors)
    BASELINE = "baseline.npz"  # a baseline model's parameters
    PREPROCESS = "preprocess.npz"  # statistics fitted on the fold's training subjects
    HISTORY = "history.csv"  # learning curve
    PREDICTIONS = "predictions.csv"  # the fold's test subjects
    EXPLANATION_PREDICTIONS = "explanation_predictions.csv"  # the explanation set, scored by this fold's model
    INFO = "fold.json"  # subject lists, best epoch, timing; written last, so it marks a finished fold

    def __init__(self, path, k: int):
        self.path = Path(path)
        self.k = k

    def __truediv__(self, name) -> Path:
        return self.path / name

    model = property(lambda self: self.path / self.MODEL)
    baseline = property(lambda self: self.path / self.BASELINE)
    preprocess = property(lambda self: self.path / self.PREPROCESS)
    history = property(lambda self: self.path / self.HISTORY)
    predictions = property(lambda self: self.path / self.PREDICTIONS)
    explanation_predictions = property(lambda self: self.path / self.EXPLANATION_PREDICTIONS)
    info = property(lambda self: self.path / self.INFO)

    @property
    def done(self) -> bool:
        """True once the fold finished (its folder is renamed into place only when complete)."""
        return self.info.is_file()


class RunFolder:
    """A run folder's files (README, "A run folder holds").

    Examples
    --------
    >>> folder = RunFolder("runs/full")
    >>> folder.metrics.as_posix(), folder.fold(2).model.as_posix()
    ('runs/full/metrics.csv', 'runs/full/folds/2/model.pt')
    """

    CONFIG = "config.toml"  # resolved settings
    RESOLVED = ".resolved.json"  # the same settings as training saw them, to refuse edits and resumes that differ
    MANIFEST = "manifest.json"  # command, versions, input checksums, subjects
    METRICS = "metrics.csv"
    PREDICTIONS = "predictions.csv"  # out-of-fold predictions
    EXPLANATION_PREDICTIONS = "explanation_predictions.csv"  # the explanation set, by the fold models' ensemble
    CHECKSUMS = "run.sha256"  # SHA-256 of every other file, written when the run is complete
    FOLDS = "folds"
    NULL = "null"  # retraining null runs (migtrans-null): perm-<b>/ with stats.npz and null.json each
    #: what a report keeps of the run (small files only, never the checkpoints)
    SUMMARY = (CONFIG, MANIFEST, METRICS, PREDICTIONS, EXPLANATION_PREDICTIONS)

    def __init__(self, path):
        self.path = Path(path)

    def __truediv__(self, name) -> Path:
        return self.path / name

    config = property(lambda self: self.path / self.CONFIG)
    resolved = property(lambda self: self.path / self.RESOLVED)
    manifest = property(lambda self: self.path / self.MANIFEST)
    metrics = property(lambda self: self.path / self.METRICS)
    predictions = property(lambda self: self.path / self.PREDICTIONS)
    explanation_predictions = property(lambda self: self.path / self.EXPLANATION_PREDICTIONS)
    checksums = property(lambda self: self.path / self.CHECKSUMS)
    folds = property(lambda self: self.path / self.FOLDS)
    null = property(lambda self: self.path / self.NULL)

    def null_run(self, permutation: int) -> Path:
        """The folder of null run ``permutation`` (1-based)."""
        return self.null / f"perm-{int(permutation):04d}"

    @staticmethod
    def file(name: str) -> str:
        """The file name of the run's table ``name`` (``metrics``, ``predictions``, ...): ``<name>.csv``."""
        return f"{name}.csv"

    def fold(self, k: int) -> FoldFolder:
        """Fold ``k`` (1-based)."""
        return FoldFolder(self.path / self.FOLDS / str(k), k)

    def fold_numbers(self) -> list[int]:
        """The folds present, in order."""
        if not self.folds.is_dir():
            return []
        return sorted(int(p.name) for p in self.folds.iterdir() if p.name.isdigit() and p.is_dir())


__all__ = ["FoldFolder", "RunFolder"]
