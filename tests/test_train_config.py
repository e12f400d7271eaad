"""`migtrans train --config FILE`: every TrainConfig and ModelConfig field from one file, flags on top."""

from __future__ import annotations

import sys

import pytest

from migtrans.cli import main
from migtrans.exceptions import ParameterError
from migtrans.model import ModelConfig
from migtrans.training import TrainConfig, read_training_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def test_a_runs_own_config_is_a_valid_config(baseline_run):
    train, model = read_training_config(baseline_run.out_dir / "config.toml")
    written = tomllib.loads((baseline_run.out_dir / "config.toml").read_text())
    assert TrainConfig(**train) == TrainConfig(**written["train"])
    assert ModelConfig.from_dict(model) == ModelConfig.from_dict(written["model"])


def test_train_from_a_config_file_with_flags_on_top(sim_cohort, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[train]\nmodel = "logistic"\nn_folds = 3\nepochs = 3\nseed = 7\nadjust = "none"\n')
    out = tmp_path / "run"
    assert (
        main(
            ["train", str(sim_cohort.toml_path), "--out", str(out), "--config", str(config), "--folds", "2", "--quiet"]
        )
        == 0
    )
    written = tomllib.loads((out / "config.toml").read_text())["train"]
    assert (written["model"], written["seed"], written["adjust"]) == ("logistic", 7, "none")  # from the file
    assert written["n_folds"] == 2  # the flag wins
    # and the run's config.toml trains the same run again
    again = tmp_path / "again"
    assert (
        main(["train", str(sim_cohort.toml_path), "--out", str(again), "--config", str(out / "config.toml"), "--quiet"])
        == 0
    )
    assert tomllib.loads((again / "config.toml").read_text())["train"] == written


def test_unknown_keys_are_listed_in_one_line(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text("[train]\nepoch = 3\nlr = 0.001\n[model]\nd_modle = 8\n[extra]\nx = 1\n")
    with pytest.raises(ParameterError, match=r"unknown entries \[extra\], train\.epoch, model\.d_modle"):
        read_training_config(config)
    assert main(["train", "x.toml", "--out", str(tmp_path / "r"), "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "train.epoch" in err and not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "text, message",
    [
        ("[train]\nepochs = -1\n", "epochs"),
        ("[train]\nadjust = 'combat'\n", "adjust"),
        ("[model]\nd_model = 'big'\n", "d_model"),
        ("[train\n", "not a readable TOML"),
    ],
)
def test_bad_values_name_the_file_and_the_field(tmp_path, text, message):
    config = tmp_path / "c.toml"
    config.write_text(text)
    with pytest.raises(ParameterError, match=message) as info:
        read_training_config(config)
    assert str(config) in str(info.value)
