"""experiments/deploy.py's protocol flags: --seed reaches the study config, and the defaults still read the same
protocol as the committed PPGBP deployment (so its out dir stays resumable)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from jaxbp import models

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "experiments" / "results" / "sweep_ppgbp_convdw"


def _deploy_cli():
  spec = importlib.util.spec_from_file_location("deploy_cli", ROOT / "experiments" / "deploy.py")
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


def _config(cli, *flags: str):
  args = cli.parse_args([str(RUN), "--platform", "gap8", "--freq-mhz", "100", *flags])
  return cli.study_config(args, "ppgbp", models.seed_config("resnet1d", "ppgbp")).to_dict()


def test_default_flags_read_the_committed_reduced_budget_deployment():
  cli = _deploy_cli()
  stored = json.loads((RUN / "deploy" / "config.json").read_text())["study"]
  reduced = _config(cli, "--float-epochs", "40", "--patience", "5", "--qat-epochs", "3", "--qat-patience", "2")
  assert reduced == stored
  full = _config(cli)
  assert (full["float_fit"]["max_epochs"], full["float_fit"]["patience"]) == (100, 10)
  assert (full["qat_fit"]["max_epochs"], full["qat_fit"]["patience"]) == (30, 5)
  assert full["seed"] == 0


def test_seed_flag_changes_only_the_training_seed():
  cli = _deploy_cli()
  base, other = _config(cli), _config(cli, "--seed", "2")
  assert other["seed"] == 2
  assert {k: v for k, v in other.items() if k != "seed"} == {k: v for k, v in base.items() if k != "seed"}


def test_seed_tables_must_share_the_protocol_but_the_seed(tmp_path):
  import pytest  # pylint: disable=import-outside-toplevel
  cli = _deploy_cli()
  protocol = _config(cli)
  table = {"rows": [], "seed": 1}
  short = _config(cli, "--seed", "1", "--qat-epochs", "3")
  for name, other in (("same", _config(cli, "--seed", "1")), ("short", short)):
    (tmp_path / name).mkdir()
    (tmp_path / name / "config.json").write_text(json.dumps({"study": other}))
    (tmp_path / name / "table.json").write_text(json.dumps(table))
  assert cli._seed_table(tmp_path / "same", protocol)["seed"] == 1
  with pytest.raises(cli.study.StudyError, match="another protocol"):
    cli._seed_table(tmp_path / "short", protocol)
