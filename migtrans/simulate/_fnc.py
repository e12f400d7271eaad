"""Simulate static FNC matrices (Fisher z) with domain structure, planted edges, site offsets and scales."""

from __future__ import annotations

import numpy as np

N_TIMEPOINTS = 150  # length of the simulated time series behind each matrix (sets sampling noise)
EDGE_EFFECT = 0.12  # Fisher-z shift per SD of the FNC latent score
SITE_SD = 0.03  # SD of the per-site offset of every edge (scanner effect)
SITE_SCALE_SD = 0.04  # SD of the per-site relative scale of every edge (scanner effect; off in the legacy model)
EDGE_SD = 0.10  # typical between-subject SD of an edge (Fisher z): the unit of the sex effect
# Domain pairs of the planted edges; directions alternate so both signs are present.
PLANTED_DOMAIN_PAIRS = (("SC", "CC"), ("DM", "CC"), ("AU", "SM"), ("DM", "DM"), ("SC", "DM"), ("VI", "SM"))
# Spread effects: the FBIRN case-control pattern (Damaraju et al. 2014): thalamus / subcortex hyperconnected
# to the sensory domains, the sensory domains hypoconnected with one another. A share of the edges of each
# domain pair carries the FNC latent with effects drawn in SPREAD_EDGE_EFFECT (Fisher z per SD): measured
# through the edges' between-subject SD (about 0.1) at the realistic budget, case-control d of about 0.2-0.35.
SPREAD_DOMAIN_PAIRS = (
    ("SC", "AU", "increase"),
    ("SC", "SM", "increase"),
    ("SC", "VI", "increase"),
    ("AU", "SM", "decrease"),
    ("SM", "VI", "decrease"),
    ("AU", "VI", "decrease"),
)
SPREAD_EDGE_SHARE = 0.3
SPREAD_EDGE_EFFECT = (0.04, 0.10)


def population_loadings(rng, domains):
    """Factor loadings giving within-domain correlation (~0.3-0.5) and weak between-domain coupling."""
    names = list(dict.fromkeys(domains))
    k = len(domains)
    member = np.array([[d == name for name in names] for d in domains], dtype=float)
    # One factor per domain plus a global factor; loadings vary per node.
    within = member * rng.uniform(0.5, 0.75, size=(k, 1))
    coupling = rng.normal(0.0, 0.12, size=(len(names), len(names)))
    between = within @ coupling * (1 - member)
    glob = rng.uniform(0.1, 0.3, size=(k, 1))
    return np.hstack([within + between, glob])


def plant_edges(rng, nodes):
    """Choose the planted edges: one per domain pair, random nodes, alternating direction."""
    domains = nodes["domain"].to_numpy()
    edges = []
    used = set()
    for e, (da, db) in enumerate(PLANTED_DOMAIN_PAIRS):
        while True:
            i = int(rng.choice(np.flatnonzero(domains == da)))
            j = int(rng.choice(np.flatnonzero(domains == db)))
            key = (min(i, j), max(i, j))
            if i != j and key not in used:
                break
        used.add(key)
        i, j = key
        edges.append(
            {
                "i": i,
                "j": j,
                "node_i": nodes["name"].iloc[i],
                "node_j": nodes["name"].iloc[j],
                "domain_i": domains[i],
                "domain_j": domains[j],
                "direction": "increase" if e % 2 == 0 else "decrease",
                "effect": EDGE_EFFECT,
            }
        )
    return edges


def _edge(nodes, i, j, direction, effect, latent, role):
    domains = nodes["domain"].to_numpy()
    i, j = min(i, j), max(i, j)
    return {
        "i": i,
        "j": j,
        "node_i": nodes["name"].iloc[i],
        "node_j": nodes["name"].iloc[j],
        "domain_i": domains[i],
        "domain_j": domains[j],
        "direction": direction,
        "effect": effect,
        "latent": latent,
        "role": role,
    }


def _pair_edges(domains, da, db):
    """Every edge (i < j) between domains ``da`` and ``db`` (within one domain when they are equal)."""
    a, b = np.flatnonzero(domains == da), np.flatnonzero(domains == db)
    return sorted({(min(i, j), max(i, j)) for i in a for j in b if i != j})


def plant_spread_edges(rng, nodes):
    """Choose the spread edges: ``SPREAD_EDGE_SHARE`` of the edges of every domain pair of
    ``SPREAD_DOMAIN_PAIRS`` (at least one), in the pair's direction, effects uniform in ``SPREAD_EDGE_EFFECT``."""
    domains = nodes["domain"].to_numpy()
    edges = []
    for da, db, direction in SPREAD_DOMAIN_PAIRS:
        candidates = _pair_edges(domains, da, db)
        k = max(1, int(round(SPREAD_EDGE_SHARE * len(candidates))))
        for c in np.sort(rng.choice(len(candidates), size=k, replace=False)):
            i, j = candidates[c]
            effect = round(float(rng.uniform(*SPREAD_EDGE_EFFECT)), 4)
            edges.append(_edge(nodes, i, j, direction, effect, "z_fnc", "main"))
    return edges


def plant_conditional_edges(rng, nodes, n_edges, domain_pairs, effect_range, taken):
    """Choose ``n_edges`` edges among those of ``domain_pairs`` not in ``taken`` (edges as dicts with i, j), carried
    by ``z_fnc_x``; directions alternate, effects uniform in ``effect_range``."""
    domains = nodes["domain"].to_numpy()
    used = {(e["i"], e["j"]) for e in taken}
    candidates = sorted({e for da, db in domain_pairs for e in _pair_edges(domains, da, db)} - used)
    picked = np.sort(rng.choice(len(candidates), size=min(n_edges, len(candidates)), replace=False))
    edges = []
    for k, c in enumerate(picked):
        i, j = candidates[c]
        effect = round(float(rng.uniform(*effect_range)), 4)
        edges.append(_edge(nodes, i, j, "decrease" if k % 2 == 0 else "increase", effect, "z_fnc_x", "fnc_given_smri"))
    return edges


def simulate_fnc(
    rng,
    nodes,
    z_fnc,
    edges,
    sites,
    n_sites,
    *,
    site_effect=None,
    site_scale=None,
    shift=None,
    rng_subjects=None,
    latents=None,
):
    """Return FNC matrices, float32 (n_subjects, K, K), symmetric with a zero diagonal, and the site offsets.

    Each subject's matrix is the Fisher z of the correlation of a simulated time series (subject-level
    loadings around population loadings), plus ``effect * z_fnc`` on the planted edges (sign by
    direction) and ``shift`` on every edge, multiplied by its site's ``site_scale``, plus a per-site
    offset of every edge (SD ``SITE_SD * site_effect``; ``site_effect=None`` is the legacy size 1).
    ``rng`` draws the population loadings and site offsets, then, unless ``rng_subjects`` is given, the
    subjects' time series. An edge with a ``latent`` key is shifted by that score of ``latents`` instead.

    Returns
    -------
    fnc : ndarray of float32, shape (n_subjects, K, K)
    site_offset : ndarray of float64, shape (n_sites, K, K)
        The offsets added (symmetric, zero diagonal); zeros with one site.
    """
    n, k = len(z_fnc), len(nodes)
    loadings = population_loadings(rng, nodes["domain"].to_numpy())
    site_offset = rng.normal(0.0, SITE_SD, size=(n_sites, k, k)) if n_sites > 1 else np.zeros((1, k, k))
    if site_effect is not None:
        site_offset = site_offset * site_effect
    site_offset = np.triu(site_offset, 1)
    site_offset = site_offset + site_offset.transpose(0, 2, 1)
    out = np.empty((n, k, k), dtype=np.float32)
    iu = np.triu_indices(k, 1)
    rng_subjects = rng if rng_subjects is None else rng_subjects
    for s in range(n):
        lam = loadings + rng_subjects.normal(0.0, 0.1, size=loadings.shape)
        factors = rng_subjects.standard_normal((N_TIMEPOINTS, lam.shape[1]))
        ts = factors @ lam.T + rng_subjects.standard_normal((N_TIMEPOINTS, k))
        r = np.corrcoef(ts, rowvar=False)
        z = np.zeros((k, k))
        z[iu] = np.arctanh(np.clip(r[iu], -0.999, 0.999))
        for edge in edges:
            sign = 1.0 if edge["direction"] == "increase" else -1.0
            score = z_fnc if "latent" not in edge else latents[edge["latent"]]
            z[edge["i"], edge["j"]] += sign * edge["effect"] * score[s]
        z = z + z.T
        if shift is not None:
            z += shift[s]  # the diagonal is zeroed below
        if site_scale is not None:
            z *= site_scale[sites[s]]
        z = z + site_offset[sites[s]]
        np.fill_diagonal(z, 0.0)
        out[s] = z
    return out, site_offset
