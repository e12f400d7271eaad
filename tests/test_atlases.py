"""Tests of the offline atlases and of the stand-in FNC node set."""

import numpy as np
import pytest

from migtrans._nodes import DOMAINS, standin_nodes
from migtrans.atlases import ATLASES, load_atlas, resample_atlas
from migtrans.exceptions import ParameterError


def _centroid_mm(data, affine, index):
    ijk = np.argwhere(data == index).mean(axis=0)
    return affine[:3, :3] @ ijk + affine[:3, 3]


@pytest.mark.parametrize("name", sorted(ATLASES))
def test_load_atlas_is_3d_labels_matching_table(name):
    img, labels = load_atlas(name)
    data = np.asarray(img.dataobj)
    assert data.ndim == 3
    assert labels.columns.tolist() == ["index", "name"]
    assert 0 not in set(labels["index"])  # 0 is background, never a region
    present = set(np.unique(data)) - {0}
    assert present <= set(labels["index"])
    assert len(present) > 0.9 * len(labels)


def test_aal_hippocampus_sits_where_it_should():
    img, labels = load_atlas("aal")
    index = int(labels.loc[labels["name"] == "Hippocampus_L", "index"].iloc[0])
    x, y, z = _centroid_mm(np.asarray(img.dataobj), img.affine, index)
    assert -35 < x < -15 and -35 < y < -5 and -25 < z < 5


def test_harvard_oxford_probabilities_become_left_right_labels():
    img, labels = load_atlas("harvard-oxford")
    data = np.asarray(img.dataobj)
    left = int(labels.loc[labels["name"].str.contains("Left_Hippocampus"), "index"].iloc[0])
    right = int(labels.loc[labels["name"].str.contains("Right_Hippocampus"), "index"].iloc[0])
    assert _centroid_mm(data, img.affine, left)[0] < -10
    assert _centroid_mm(data, img.affine, right)[0] > 10


def test_load_atlas_unknown_name_lists_choices():
    with pytest.raises(ParameterError, match="aal.*harvard-oxford.*'talairach'"):
        load_atlas("talairach")


def test_resample_atlas_identity_and_coarse_grid():
    img, labels = load_atlas("aal")
    same = resample_atlas(img, img.affine, img.shape)
    np.testing.assert_array_equal(np.asarray(same.dataobj), np.asarray(img.dataobj))

    # A coarse grid of odd, distinct sizes: labels stay labels and land in the same place.
    affine = np.array([[4.0, 0, 0, -90], [0, 4.0, 0, -126], [0, 0, 4.0, -72], [0, 0, 0, 1]])
    coarse = resample_atlas(img, affine, (45, 53, 47))
    data = np.asarray(coarse.dataobj)
    assert data.shape == (45, 53, 47)
    assert set(np.unique(data)) <= set(labels["index"]) | {0}
    index = int(labels.loc[labels["name"] == "Thalamus_R", "index"].iloc[0])
    fine_c = _centroid_mm(np.asarray(img.dataobj), img.affine, index)
    coarse_c = _centroid_mm(data, affine, index)
    assert np.abs(fine_c - coarse_c).max() < 4.0


def test_resample_atlas_rejects_bad_grid():
    img, _ = load_atlas("aal")
    with pytest.raises(ParameterError, match="target grid"):
        resample_atlas(img, np.eye(3), (4, 5, 6))


def test_standin_nodes_domains_in_order():
    nodes = standin_nodes()
    assert len(nodes) == 53
    assert list(dict.fromkeys(nodes["domain"])) == list(DOMAINS)
    assert nodes.groupby("domain", sort=False).size().to_dict() == DOMAINS
    assert nodes["name"].is_unique
    assert not nodes[["x", "y", "z"]].duplicated().any()
    assert nodes["note"].str.contains("Seitzman").all()
    assert nodes["note"].str.contains("not a NeuroMark").all()
    cb = nodes[nodes["domain"] == "CB"]
    assert (cb["z"] < -25).all() and (cb["y"] < -40).all()
    assert nodes.loc[nodes["domain"] == "AU", "network"].eq("Auditory").all()
    assert nodes.loc[nodes["domain"] == "DM", "network"].eq("DefaultMode").all()
    # Subcortical nodes are deep: near the midline, not on the cortical surface.
    sc = nodes[nodes["domain"] == "SC"]
    assert (sc["x"].abs() < 30).all() and sc["z"].between(-25, 15).all()


def test_standin_nodes_deterministic():
    assert standin_nodes().equals(standin_nodes())
