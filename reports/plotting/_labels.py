"""Text labels for points of interest that never overlap one another: deterministic greedy stacking.

Labels are placed in priority order. Each starts just above its point and, when it would overlap a label
already placed, moves up past it; a thin leader line joins a moved label to its point. Positions are worked
out in display space and stored in data coordinates, so they hold as long as the axes keep their size (the
callers fix the layout before placing labels)."""

from __future__ import annotations

import numpy as np

from migtrans.exceptions import ParameterError


def _overlaps(box, boxes, pad):
    """Indices of ``boxes`` (x0, y0, x1, y1 rows) that ``box`` overlaps, with ``pad`` pixels of clearance."""
    if not len(boxes):
        return np.zeros(0, dtype=int)
    b = np.asarray(boxes)
    hit = (b[:, 0] < box[2] + pad) & (b[:, 2] > box[0] - pad) & (b[:, 1] < box[3] + pad) & (b[:, 3] > box[1] - pad)
    return np.flatnonzero(hit)


def _segment_boxes(x0, y0, x1, y1, n=24, half=0.75):
    """A leader line as a chain of small boxes, so that it can be tested like any other obstacle."""
    t = np.linspace(0, 1, n)[1:-1]
    xs, ys = x0 + (x1 - x0) * t, y0 + (y1 - y0) * t
    return [[x - half, y - half, x + half, y + half] for x, y in zip(xs, ys)]


def _push_up(box, taken, pad):
    """Move ``box`` up past whatever it overlaps until it overlaps nothing; each step clears one obstacle for
    good, so the loop ends after at most len(taken) steps."""
    h = box[3] - box[1]
    for _ in range(len(taken) + 1):
        hit = _overlaps(box, taken, pad)
        if not len(hit):
            break
        bottom = max(taken[i][3] for i in hit) + pad
        box = [box[0], bottom, box[2], bottom + h]
    return box


def _stack(anchors, sizes, x_range, offset, pad, dot=3.0):
    """Greedy placement in display pixels; returns one (x0, y0, x1, y1) box per label.

    Each label tries spots centred above its point and shifted sideways by up to two label widths, each
    pushed up past what it would cover: earlier labels, their leader lines and every labelled point. The spot
    whose leader crosses no label, that sits lowest and then nearest wins; remaining ties keep the earlier
    candidate (left before right), so the result is deterministic."""
    points = [[x - dot, y - dot, x + dot, y + dot] for x, y in anchors]
    boxes, leaders = [], []
    for (ax_x, ax_y), (w, h) in zip(anchors, sizes):
        lo, hi = x_range[0] + w / 2, max(x_range[0] + w / 2, x_range[1] - w / 2)
        best = None
        for shift in (k * (w / 2 + pad) for k in (0, -1, 1, -2, 2, -3, 3, -4, 4)):
            # Keep the label inside the axes horizontally: a label at the panel's edge is shifted inwards.
            cx = float(np.clip(ax_x + shift, lo, hi))
            own = [q for q in points if not (q[0] < ax_x < q[2] and q[1] < ax_y < q[3])]
            box = _push_up([cx - w / 2, ax_y + offset, cx + w / 2, ax_y + offset + h], boxes + leaders + own, pad)
            crossing = len(_overlaps_any(_segment_boxes(ax_x, ax_y, cx, box[1]), boxes))
            score = (crossing > 0, round(box[1], 3), abs(shift))
            if best is None or score < best[0]:
                best = (score, box, cx)
        _, box, cx = best
        boxes.append(box)
        if box[1] > ax_y + offset + 0.5:
            leaders.extend(_segment_boxes(ax_x, ax_y, cx, box[1]))
    return boxes


def _overlaps_any(segments, boxes):
    """The segment pieces that fall inside any of ``boxes``."""
    return [s for s in segments if len(_overlaps(s, boxes, 0.0))]


def place_labels(
    ax, x, y, texts, *, fontsize=7, offset_points=4, pad_points=1.5, max_rounds=6, leader_color="0.4", **text_kw
):
    """Write ``texts`` above the points (``x``, ``y``) of ``ax`` without overlaps.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Axes whose limits and size are final, except for the upper y limit, which is raised when a stack of
        labels would leave the axes.
    x, y : array-like
        Data coordinates of the labelled points, in priority order: earlier labels sit closest to their point.
    texts : sequence of str
        One label per point.
    fontsize : float, default=7
        Label font size in points.
    offset_points, pad_points : float
        Gap between a point and its label, and the minimum clearance between two labels, in points.
    max_rounds : int, default=6
        How many times the upper y limit may be raised to fit the labels.
    leader_color : color, default="0.4"
        Colour of the line joining a label to its point.
    **text_kw
        Passed to `matplotlib.axes.Axes.text`.

    Returns
    -------
    labels : list of matplotlib.text.Text
    leaders : list of matplotlib.lines.Line2D
        The leader lines, one per label.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> _ = ax.scatter([1, 1.01, 2], [3, 3, 1])
    >>> labels, leaders = place_labels(ax, [1, 1.01, 2], [3, 3, 1], ["A", "B", "C"])
    >>> len(labels)
    3
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    texts = [str(t) for t in texts]
    if not (len(x) == len(y) == len(texts)):
        raise ParameterError(
            f"x, y, texts: expected one entry per label in each, found {len(x)}, {len(y)}, {len(texts)}"
        )
    if not texts:
        return [], []
    fig = ax.figure
    # Freeze the limits: autoscaling after placement would move the points under fixed labels.
    ax.set_xlim(ax.get_xlim())
    ax.set_ylim(ax.get_ylim())
    renderer = fig.canvas.get_renderer()
    px = fig.dpi / 72.0
    labels = [
        ax.text(0, 0, t, fontsize=fontsize, ha="left", va="bottom", zorder=5, clip_on=False, **text_kw) for t in texts
    ]
    sizes = []
    for label in labels:
        extent = label.get_window_extent(renderer)
        sizes.append((extent.width, extent.height))

    for _ in range(max_rounds):
        anchors = ax.transData.transform(np.column_stack([x, y]))
        axes_box = ax.get_window_extent(renderer)
        boxes = _stack(anchors, sizes, (axes_box.x0, axes_box.x1), offset_points * px, pad_points * px)
        top = max(b[3] for b in boxes) + pad_points * px
        if top <= axes_box.y1:
            break
        # Raise the upper limit so that the highest label fits, then place again: the points move down in
        # display space when the limit grows, so the stacks must be recomputed.
        y0, y1 = ax.get_ylim()
        needed = ax.transData.inverted().transform((0, top))[1]
        ax.set_ylim(y0, y1 + (needed - y1) * 1.05)

    inverse = ax.transData.inverted()
    leaders = []
    for label, box, xi, yi in zip(labels, boxes, x, y):
        label.set_position(inverse.transform((box[0], box[1])))
        bottom_centre = inverse.transform(((box[0] + box[2]) / 2, box[1]))
        (line,) = ax.plot(
            [xi, bottom_centre[0]],
            [yi, bottom_centre[1]],
            color=leader_color,
            lw=0.5,
            zorder=4,
            clip_on=False,
            scalex=False,
            scaley=False,
        )
        leaders.append(line)
    return labels, leaders
