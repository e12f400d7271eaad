"""A stand-in 53-node FNC node set built from the Seitzman (2018) ROIs shipped with nilearn.

The NeuroMark-53 node table is not shipped anywhere we can read, so the simulator uses real MNI
coordinates from Seitzman et al. (2018) grouped into seven NeuroMark-style domains. Every output that
uses these nodes says so in its ``note`` column.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["standin_nodes", "DOMAINS", "NODE_NOTE"]

#: NeuroMark-style domains, in matrix order, with their node counts (53 in all).
DOMAINS = {"SC": 5, "AU": 2, "SM": 9, "VI": 9, "CC": 17, "DM": 7, "CB": 4}

NODE_NOTE = (
    "stand-in node: ROI from Seitzman et al. 2018 (300-ROI set shipped with nilearn), "
    "grouped into a NeuroMark-style domain; not a NeuroMark component"
)

# Seitzman network names feeding each cortical domain.
_NETWORKS = {
    "AU": ("Auditory",),
    "SM": ("SomatomotorDorsal", "SomatomotorLateral"),
    "VI": ("Visual",),
    "CC": ("FrontoParietal", "CinguloOpercular", "Salience", "DorsalAttention", "VentralAttention"),
    "DM": ("DefaultMode",),
}
# Codes of seitzman_2018_ROIs_anatomicalLabels.txt.
_CORTEX = (0, 1, 2)
_AMYGDALA, _BASAL_GANGLIA, _THALAMUS, _CEREBELLUM = 4, 5, 6, 7


def _nilearn_data_dir():
    spec = importlib.util.find_spec("nilearn")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


@lru_cache(maxsize=1)
def _read_seitzman():
    data_dir = _nilearn_data_dir()
    rois = pd.read_csv(data_dir / "seitzman_2018_ROIs_300inVol_MNI_allInfo.txt", sep=r"\s+")
    # First line of the label file is the code legend, then one code per ROI.
    anat = np.loadtxt(data_dir / "seitzman_2018_ROIs_anatomicalLabels.txt", skiprows=1, dtype=int)
    rois["anat"] = anat
    return rois


def _spread(rows, k):
    """Take k rows evenly spread over the candidates (deterministic, covers the whole network)."""
    rows = np.asarray(rows)
    idx = np.round(np.linspace(0, len(rows) - 1, k)).astype(int)
    return list(rows[idx])


def standin_nodes():
    """Return the 53 stand-in FNC nodes, in matrix order.

    Returns
    -------
    nodes : pandas.DataFrame
        Columns ``name`` ("SC01", ...), ``domain``, ``x``, ``y``, ``z`` (MNI mm), ``network``
        (the Seitzman network of the source ROI) and ``note``; domains follow :data:`DOMAINS`.

    Examples
    --------
    >>> nodes = standin_nodes()
    >>> nodes.shape[0], nodes["domain"].iloc[0]
    (53, 'SC')
    """
    rois = _read_seitzman()
    net, anat = rois["netName"], rois["anat"]
    picked = {}
    # Subcortical: the Reward-network amygdala/striatal ROIs, then thalamus.
    sc = list(rois.index[net.eq("Reward") & anat.isin([_AMYGDALA, _BASAL_GANGLIA])])
    sc += list(rois.index[anat.eq(_THALAMUS)])
    picked["SC"] = sc[: DOMAINS["SC"]]
    # Auditory: first left and first right cortical ROI.
    au = rois.index[net.eq("Auditory") & anat.isin(_CORTEX)]
    picked["AU"] = [next(i for i in au if rois.at[i, "x"] < 0), next(i for i in au if rois.at[i, "x"] > 0)]
    for domain in ("SM", "VI", "CC", "DM"):
        cand = rois.index[net.isin(_NETWORKS[domain]) & anat.isin(_CORTEX)]
        picked[domain] = _spread(cand, DOMAINS[domain])
    cb = rois.index[anat.eq(_CEREBELLUM) & (rois["z"] < -25) & (rois["y"] < -40)]
    picked["CB"] = _spread(cb, DOMAINS["CB"])

    records = []
    for domain in DOMAINS:
        for k, i in enumerate(picked[domain], start=1):
            records.append(
                {
                    "name": f"{domain}{k:02d}",
                    "domain": domain,
                    "x": float(rois.at[i, "x"]),
                    "y": float(rois.at[i, "y"]),
                    "z": float(rois.at[i, "z"]),
                    "network": rois.at[i, "netName"],
                    "note": NODE_NOTE,
                }
            )
    return pd.DataFrame.from_records(records)
