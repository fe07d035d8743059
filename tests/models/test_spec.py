"""Model specs from atlas.toml tables and weight lookup: validated without torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from generator.errors import ConfigError, UnknownNameError, WeightsError
from generator.models.model_spec import (
    DEMO_WEIGHTS,
    default_places,
    fetch_destination,
    find_weights,
    model_specs,
    parse_model_spec,
    resolve_spec,
    torch_home,
)


def test_spec_module_does_not_import_torch():
    code = "import sys, generator.models.model_spec, generator.models.commands; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_builtin_names():
    assert parse_model_spec("inceptionv1").kind == "inceptionv1"
    assert parse_model_spec("googlenet").kind == "googlenet"
    assert parse_model_spec("demo").kind == "demo"
    spec = parse_model_spec("torchvision:resnet50")
    assert (spec.kind, spec.arch, spec.weights) == ("torchvision", "resnet50", None)


def test_tables_configure_and_define_models(tmp_path):
    tables = {
        "inceptionv1": {"weights": "weights/inception5h.pth"},
        "resnet": {
            "torchvision": "resnet50",
            "layers": {"l3": "layer3"},
            "weights": "IMAGENET1K_V2",
        },
        "mine": {"entry": "mypkg.models:build", "options": {"depth": 3}},
        "lucid-copy": {"model": "inceptionv1", "weights": "random"},
    }
    specs = model_specs(tables, base_dir=tmp_path)
    assert list(specs) == ["googlenet", "demo", "inceptionv1", "resnet", "mine", "lucid-copy"]
    assert specs["inceptionv1"].weights == str(tmp_path / "weights" / "inception5h.pth")
    assert specs["inceptionv1"].weights_is_file
    resnet = specs["resnet"]
    assert (resnet.arch, dict(resnet.layers), resnet.weights_name) == (
        "resnet50",
        {"l3": "layer3"},
        "IMAGENET1K_V2",
    )
    assert not resnet.weights_is_file
    assert specs["mine"].entry == "mypkg.models:build" and specs["mine"].options == {"depth": 3}
    assert specs["lucid-copy"].kind == "inceptionv1" and not specs["lucid-copy"].weights_is_file
    assert resolve_spec("mine", tables).kind == "entry"
    assert resolve_spec("googlenet", tables).kind == "googlenet"


@pytest.mark.parametrize(
    "name, table, words",
    [
        (
            "inceptionv1",
            {"weigths": "x.pth"},
            ["weigths", "did you mean 'weights'", "model, weights"],
        ),
        ("mine", {"entry": "not a path"}, ["entry", '"package.module:function"', "'not a path'"]),
        ("r", {"torchvision": "resnet50", "layers": {"a": 3}}, ["layers", "module.path"]),
        ("r", {"torchvision": "resnet50", "input_size": 8}, ["input_size", "[16, 4096]"]),
        ("x", {"weights": "a.pth"}, ["not built in", "entry ="]),
        ("x", {"model": "alexnet"}, ["model", "inceptionv1, googlenet, demo"]),
        ("inceptionv1", {"weights": ""}, ["weights", "a file path"]),
    ],
)
def test_invalid_tables_name_key_value_and_expectation(name, table, words):
    with pytest.raises(ConfigError) as err:
        parse_model_spec(name, table)
    message = err.value.message()
    assert err.value.exit_code == 2
    for word in words:
        assert word in message


def test_unknown_model_name_suggests_the_closest():
    with pytest.raises(UnknownNameError) as err:
        parse_model_spec("inceptionv2")
    assert "did you mean 'inceptionv1'" in err.value.message()
    assert "torchvision:<architecture>" in err.value.message()


def test_torch_home_rules(monkeypatch, tmp_path):
    monkeypatch.delenv("TORCH_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert torch_home() == tmp_path / "xdg" / "torch"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert torch_home() == tmp_path / "th"


def test_lookup_order_explicit_then_table_then_env_then_torch_home(monkeypatch, tmp_path):
    env_dir = tmp_path / "env"
    monkeypatch.setenv("ATLAS_WEIGHTS_DIR", str(env_dir))
    places = default_places("inception5h.pth")
    assert [p for p, _ in places] == [
        env_dir / "inception5h.pth",
        torch_home() / "hub" / "checkpoints" / "inception5h.pth",
    ]
    assert fetch_destination("inception5h.pth") == env_dir / "inception5h.pth"
    plain = parse_model_spec("inceptionv1")
    assert find_weights(plain, places).found is None
    places[1][0].parent.mkdir(parents=True)
    places[1][0].write_bytes(b"hub")
    assert find_weights(plain, places).found == places[1][0]
    env_dir.mkdir()
    places[0][0].write_bytes(b"env")
    assert find_weights(plain, places).found == places[0][0]
    table_file = tmp_path / "table.pth"
    table_file.write_bytes(b"table")
    configured = parse_model_spec("inceptionv1", {"weights": str(table_file)})
    assert find_weights(configured, places).found == table_file
    explicit = tmp_path / "explicit.pth"
    explicit.write_bytes(b"explicit")
    assert find_weights(configured, places, explicit).found == explicit


def test_a_named_weights_file_must_exist(tmp_path):
    spec = parse_model_spec("inceptionv1", {"weights": "missing.pth"}, base_dir=tmp_path)
    with pytest.raises(WeightsError) as err:
        find_weights(spec, default_places("inception5h.pth"))
    message = err.value.message()
    assert str(tmp_path / "missing.pth") in message and "[models.inceptionv1] weights" in message
    assert "atlas weights fetch inceptionv1" in message


def test_demo_weights_live_in_the_package():
    assert DEMO_WEIGHTS.parts[-4:] == ("generator", "models", "weights", "demo.pt")


def test_relative_paths_are_relative_to_the_config_folder(tmp_path):
    spec = parse_model_spec("r", {"torchvision": "resnet18", "labels": "l.txt"}, base_dir=tmp_path)
    assert Path(str(spec.labels)) == tmp_path / "l.txt"
