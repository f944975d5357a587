"""A saved run changes the recipe only (``mask_cls/recipe.py``): every key of every config option
is checked against the rule that no recipe key names a place, and the filter is a property over
any key path and any value."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from mask_cls import recipe
from tests.conftest import ROOT, compose_cfg

GROUPS = ("data", "model", "head", "loss", "optim", "sched", "augment", "sampler", "ssl", "trainer", "callbacks",
          "logger", "debug", "experiment", "task", "hparams_search")
#: words of a key's last part (split at ``_``) that say it names a place
PLACE_WORDS = {"dir", "dirpath", "path", "root", "file", "filename", "csv", "uri", "url", "host", "store", "weights",
               "save", "version", "name", "offline", "online", "pretrained", "model", "project", "entity", "profiler",
               "out", "unlabeled", "relabel", "cache", "targets", "db", "server"}
#: recipe keys whose name holds a place word but which name no place (reviewed)
NOT_PLACES = {"ssl.name": "the method's name (none, uda, distill)",
              "data.cache": "a switch; its folder is data.cache_dir, outside the recipe",
              "loss.class_weights": "a scheme's name (none, inverse_log, ...)",
              "head.task_weights": "three numbers",
              "model.drop_path_rate": "stochastic depth, a probability"}


def _leaves(node, prefix=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(node, list) and node and all(isinstance(x, dict) for x in node):
        return  # a list of transforms: refused whole by the literal rule
    else:
        yield prefix, node


@pytest.fixture(scope="module")
def every_key() -> dict[str, object]:
    """Every leaf key (unresolved default) of the config composed with every option of every group."""
    found: dict[str, object] = {}
    for group in GROUPS:
        for option in sorted((ROOT / "conf" / group).glob("*.yaml")):
            cfg = compose_cfg(f"{group}={option.stem}", "data.root=/data", "data.csv=/data/t.csv")
            for key, value in _leaves(OmegaConf.to_container(cfg, resolve=False)):
                if not key.startswith("hydra"):
                    found.setdefault(key, value)
    return found


def places_in_recipe(keys: dict[str, object]) -> list[str]:
    """Recipe keys that name a place: by their name, or by a default that is a path or a run folder."""
    bad = []
    for key, value in keys.items():
        if not recipe.is_recipe_key(key, group=False) or key in recipe.NAMED_CHOICES or key.split(".")[-1].startswith("_"):
            continue
        interpolated = isinstance(value, str) and value.startswith("${")
        derived = interpolated and any(s in value for s in ("${paths", "${hydra", "${cwd", "${data.root"))
        named = PLACE_WORDS & set(key.rsplit(".", 1)[-1].lower().split("_"))
        if (named and key not in NOT_PLACES) or derived or (not interpolated and recipe.looks_like_place(value)):
            bad.append(key)
    return bad


def test_no_key_of_the_recipe_names_a_place(every_key):
    assert len(every_key) > 150  # the whole config, every option of every group
    assert places_in_recipe(every_key) == []
    for key in recipe.NAMED_CHOICES:  # a key that names a place by nature takes named values only
        assert key in every_key and recipe.value_refusal(key, "/tmp/x") and recipe.value_refusal(key, "x")


def test_the_rule_sees_a_planted_place_key(every_key, monkeypatch):
    """A future option that slips a place into the recipe fails the test above."""
    monkeypatch.setattr(recipe, "RECIPE_KEYS", (*recipe.RECIPE_KEYS, "logger", "data.cache_dir",
                                                "callbacks.model_checkpoint"))
    assert {"logger.csv.save_dir", "logger.wandb.offline", "data.cache_dir",
            "callbacks.model_checkpoint.dirpath"} <= set(places_in_recipe(every_key))


def test_every_key_is_recipe_or_the_commands_own_or_refused(every_key):
    """The three classes split the config: a recipe key is never a command key."""
    for key in every_key:
        assert not (recipe.is_recipe_key(key, False) and recipe.is_command_key(key, False)), key
    assert recipe.RECIPE_GROUPS.isdisjoint(recipe.COMMAND_GROUPS)


# -- the filter as a property: any key path, any value -------------------------------------------

_word = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
_roots = st.sampled_from(["data", "model", "logger", "callbacks", "trainer", "optim", "seed", "tta", "paths",
                          "unlabeled", "ssl", "synth", "engine", "head", "task", "hydra"])
keys = st.builds(lambda r, rest: ".".join([r, *rest]), _roots, st.lists(_word, max_size=3))
values = st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), st.none(),
                   st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=30),
                   st.sampled_from(["/abs/x", "../up", "http://127.0.0.1:9", "sqlite:////x.db", "~/x", "C:\\x",
                                    "eval", "competition", "val/f1", "./x"]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=keys, value=values)
def test_a_saved_line_is_taken_only_inside_the_recipe_and_never_names_a_place(key, value):
    from mask_cls.errors import ConfigError
    from mask_cls.run_config import _in_recipe

    class Ov:  # what _in_recipe reads of Hydra's Override
        key_or_group = key

        @staticmethod
        def value():
            return value

    group = (ROOT / "conf" / key).is_dir()
    try:
        _in_recipe(Ov, Path("overrides.yaml"))
        taken = True
    except ConfigError as e:
        taken = False
        assert "\n" not in str(e) and str(e).startswith("overrides.yaml: ") and key in str(e)
    if taken:
        assert recipe.is_recipe_key(key, group)
        assert key in recipe.NAMED_CHOICES and value in recipe.NAMED_CHOICES[key] or not recipe.looks_like_place(value)
    if isinstance(value, str) and ("/" in value or "://" in value) and not re.match(r"^(train|val|cv)/\w+$", value):
        assert not taken
    if recipe.under(key, ("logger", "paths", "hydra", "callbacks.model_checkpoint", "callbacks.last_checkpoint")):
        assert not taken


def test_a_recomposed_run_takes_the_recipe_and_refuses_the_rest(tmp_path):
    """Through the whole path (compose, file, refusal): a planted logger key fails closed in one line."""
    from hydra import initialize_config_dir

    from mask_cls.errors import ConfigError
    from mask_cls.resolvers import register
    from mask_cls.run_config import with_run_config

    register()
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text(f"data:\n  root: {tmp_path}\n")
    good = ["data=mask", "model.backbone=resnet10t", "data.image_size=[32,24]", "trainer.max_epochs=3",
            "logger=mlflow", "trainer.devices=2", "callbacks=swa", "callbacks.swa.swa_lrs=0.01", "data.relabel=competition"]
    (run / ".hydra" / "overrides.yaml").write_text("\n".join(f"- {line}" for line in good) + "\n")
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        typed = [f"resume={run}"]
        from hydra import compose

        cfg = with_run_config(compose("config", overrides=typed), typed=typed)
        assert cfg.model.backbone == "resnet10t" and list(cfg.data.image_size) == [32, 24]
        assert cfg.trainer.max_epochs == 3 and cfg.callbacks.swa.swa_lrs == 0.01 and cfg.data.relabel == "competition"
        assert "mlflow" not in cfg.logger and cfg.trainer.devices == 1  # the command's own: from conf/
        (run / ".hydra" / "overrides.yaml").write_text("\n".join(
            f"- {line}" for line in [*good, "logger.mlflow.tracking_uri=http://127.0.0.1:9"]) + "\n")
        with pytest.raises(ConfigError, match=r"overrides.yaml: logger.mlflow.tracking_uri is refused"):
            with_run_config(compose("config", overrides=typed), typed=typed)
        typed = [f"resume={run}", "logger=csv"]  # the user typed the logger: the saved logger lines are skipped
        assert with_run_config(compose("config", overrides=typed), typed=typed).model.backbone == "resnet10t"


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=20)


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(["seed", "optim.lr", "data.root", "data.csv", "model.backbone", "tta", "data.image_size"]),
       before=_text, after=_text, form=st.sampled_from(["plain", "quoted", "list"]))
def test_an_interpolation_anywhere_in_a_saved_line_is_refused(key, before, after, form):
    """``${`` anywhere in a saved value (the saved data.root and data.csv included) never reaches a resolver."""
    from mask_cls.errors import ConfigError
    from mask_cls.run_config import _parse, _read_paths

    value = {"plain": f"{before}${{oc.env:HOME}}{after}", "quoted": f"'{before}${{x}}{after}'",
             "list": f"[1,'{before}${{oc.decode:x}}']"}[form]
    with pytest.raises(ConfigError, match="refused"):
        _parse(f"{key}={value}", "overrides.yaml")
    if key in ("data.root", "data.csv"):
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "config.yaml"
            path.write_text(yaml_dump({"data": {key.split(".")[1]: f"{before}${{oc.env:HOME}}{after}"}}))
            with pytest.raises(ConfigError, match="must be a plain path"):
                _read_paths(path, [])


def yaml_dump(node) -> str:
    import yaml

    return yaml.safe_dump(node)


@settings(max_examples=300, deadline=None)
@given(saved=st.lists(st.sampled_from(["data", "model", "logger", "trainer"]), min_size=1, max_size=3),
       rest=st.lists(st.sampled_from(["a", "b", "c"]), max_size=2), typed=st.lists(
           st.sampled_from(["data", "data.a", "model", "model.b", "trainer.c", "x"]), max_size=3))
def test_a_retyped_key_or_group_covers_every_saved_key_under_it(saved, rest, typed):
    from mask_cls.run_config import _covered

    key = ".".join([saved[0], *rest])
    covered = _covered(key, typed)
    assert covered == any(key == t or key.startswith(t + ".") for t in typed)
    if saved[0] in typed:  # retyping a group replaces its subtree: nothing under it is taken from the run
        assert covered
    assert not _covered(key + "x", [key]) or key + "x" == key  # a longer name is not under it
