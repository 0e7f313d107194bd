"""The network's hyperparameters for tests: the default setting's reviewed values (the one
place they live), with the few a test chooses for itself replaced; only model.build()'s."""

from __future__ import annotations

import json

from contract import paths
from modules import model


def network(**chosen) -> dict:
    reviewed = json.loads(paths.hyperparameters_file(encoder=False).read_text())["values"]
    unknown = set(chosen) - set(reviewed)
    assert not unknown, f"not a network hyperparameter: {sorted(unknown)}"
    return {name: {**reviewed, **chosen}[name] for name in model.HYPERPARAMETERS}
