"""Save a matplotlib figure at publication resolution: a 300-dpi PNG plus vector formats."""

from __future__ import annotations

from pathlib import Path

from migtrans.exceptions import ParameterError

FORMATS = ("png", "pdf", "svg")


def save_figure(fig, folder, name, formats=FORMATS, *, dpi=300):
    """Write ``fig`` as ``folder/name.<format>`` for each format, then close it.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure to save. It is closed afterwards, so that building many figures does not hold them all
        in memory.
    folder : str or Path
        Output folder, created if needed.
    name : str
        File stem, without a suffix.
    formats : sequence of {"png", "pdf", "svg"}
        Formats to write. The PNG (if requested) comes first in the returned tuple.
    dpi : int, default=300
        Resolution of the PNG and of rasterized elements (dense scatter plots) in the vector formats.

    Returns
    -------
    tuple of Path
        The written files, PNG first, then the other formats in the order given.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> paths = save_figure(fig, "figures", "example", formats=("png", "pdf"))  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    formats = tuple(formats)
    unknown = sorted(set(formats) - set(FORMATS))
    if not formats or unknown:
        raise ParameterError(f"formats: expected a non-empty subset of {FORMATS}, found {formats!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ordered = sorted(dict.fromkeys(formats), key=lambda f: f != "png")
    paths = []
    try:
        for fmt in ordered:
            path = folder / f"{name}.{fmt}"
            # Fixed metadata keeps vector files byte-stable across runs (no creation date).
            metadata = {"png": {"Software": None}, "pdf": {"CreationDate": None}, "svg": {"Date": None}}[fmt]
            fig.savefig(path, format=fmt, dpi=dpi, bbox_inches="tight", pad_inches=0.05, metadata=metadata)
            paths.append(path)
    finally:
        plt.close(fig)
    return tuple(paths)
