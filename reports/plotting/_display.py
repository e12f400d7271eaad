"""`Display`: the one shape of every figure, after scikit-learn's ``*Display`` family. A display is built from
results by a ``from_*`` class method, which computes everything it shows, and drawn by ``plot(ax=None, ...)``,
which only draws."""

from __future__ import annotations

import functools

from migtrans.exceptions import ParameterError


class Display:
    """Base of the figures.

    ``plot(ax=None, **options)`` draws and returns the display. ``ax`` says where: None for a new figure; a
    matplotlib Axes for a display of one panel; a Figure for a display of several panels or drawn by
    nilearn, which lays its panels out in it (`ManhattanDisplay` and `QQDisplay` also take one Axes per
    panel). Afterwards ``figure_`` is the figure, ``axes_`` the list of axes drawn on and ``ax_`` the first.
    """

    figure_ = None
    axes_ = None
    ax_ = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        draw = cls.__dict__.get("plot")
        if draw is None:
            return

        @functools.wraps(draw)
        def plot(self, ax=None, **options):
            result = draw(self, ax, **options)
            self._complete_attributes()
            return result

        cls.plot = plot

    def plot(self, ax=None, **options):  # pragma: no cover - every display defines it
        raise NotImplementedError

    def _complete_attributes(self):
        """``figure_``, ``axes_`` and ``ax_`` all set, whichever of them the subclass drew with."""
        if self.figure_ is None:
            first = self.ax_ if self.ax_ is not None else (self.axes_[0] if self.axes_ else None)
            self.figure_ = first.figure if first is not None else None
        if self.axes_ is None:
            self.axes_ = [self.ax_] if self.ax_ is not None else list(getattr(self.figure_, "axes", []))
        self.axes_ = list(self.axes_)
        if self.ax_ is None and self.axes_:
            self.ax_ = self.axes_[0]

    def _as_figure(self, ax):
        """The Figure a multi-panel display draws into: ``ax`` itself, or None for a new one."""
        from matplotlib.figure import Figure, SubFigure

        if ax is None or isinstance(ax, (Figure, SubFigure)):
            return ax
        raise ParameterError(
            f"ax: {type(self).__name__} draws several panels or through nilearn; expected a matplotlib Figure or "
            f"None, found {type(ax).__name__}"
        )


__all__ = ["Display"]
