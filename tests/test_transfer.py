"""Transfer learning: a one-channel top tagger as the start of a four-class, two-view pixel-map model."""

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from jetnu.data.spec import InputSpec
from jetnu.models.module import TaggerModule

PIXEL_SPEC = InputSpec.pixel_map(height=32, width=32)


@pytest.fixture(scope="module")
def top_checkpoint(tmp_path_factory):
    torch.manual_seed(1)
    module = TaggerModule(model="resnet_tiny", input_spec=InputSpec(height=32, width=32))
    trainer = pl.Trainer(accelerator="cpu", max_epochs=0, logger=False, enable_checkpointing=False)
    trainer.strategy.connect(module)
    path = tmp_path_factory.mktemp("top") / "top.ckpt"
    trainer.save_checkpoint(path)
    return path, module


def _train_steps(module: TaggerModule, steps: int = 3) -> None:
    torch.manual_seed(2)
    images = torch.rand(16, 2, 32, 32)
    labels = torch.randint(0, 4, (16,))
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, train_dataloaders=DataLoader(TensorDataset(images, labels), batch_size=4))


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}


def test_top_checkpoint_starts_pixel_map_model(top_checkpoint):
    path, top = top_checkpoint
    module = TaggerModule(model="resnet_tiny", input_spec=PIXEL_SPEC, init_checkpoint=str(path), freeze="head")

    report = module.init_report
    assert report.adapted == ["conv1.weight (1 -> 2 channels)"]
    assert sorted(report.replaced_head) == ["fc.bias", "fc.weight"]
    assert module.model.fc.out_features == 4

    # Each view gets half the one-channel kernel, so identical views reproduce the jet-image response.
    source_stem = top.model.conv1.weight
    torch.testing.assert_close(module.model.conv1.weight[:, :1], source_stem / 2)
    torch.testing.assert_close(module.model.conv1.weight[:, 1:], source_stem / 2)
    torch.testing.assert_close(module.model.layer3[0].conv1.weight, top.model.layer3[0].conv1.weight)


def test_freeze_head_keeps_backbone_and_batchnorm_stats(top_checkpoint):
    path, _ = top_checkpoint
    module = TaggerModule(model="resnet_tiny", input_spec=PIXEL_SPEC, init_checkpoint=str(path), freeze="head")
    before = _snapshot(module.model)

    _train_steps(module)

    after = _snapshot(module.model)
    backbone = [name for name in before if not name.startswith("fc.")]
    changed = [name for name in backbone if not torch.equal(before[name], after[name])]
    assert changed == []
    assert "bn1.running_mean" in backbone
    assert not torch.equal(before["fc.weight"], after["fc.weight"])


def test_freeze_last_stage_trains_only_layer4_and_head(top_checkpoint):
    path, _ = top_checkpoint
    module = TaggerModule(
        model="resnet_tiny", input_spec=PIXEL_SPEC, init_checkpoint=str(path), freeze="last_stage", lr=1e-2
    )
    before = _snapshot(module.model)

    _train_steps(module)

    after = _snapshot(module.model)
    for name in before:
        unchanged = torch.equal(before[name], after[name])
        if name.startswith(("layer1.", "layer2.", "layer3.", "conv1.", "bn1.")):
            assert unchanged, f"{name} moved although frozen"
    assert not torch.equal(before["layer4.0.conv1.weight"], after["layer4.0.conv1.weight"])
    assert not torch.equal(before["layer4.0.bn1.running_mean"], after["layer4.0.bn1.running_mean"])


def test_freeze_full_uses_lower_backbone_learning_rate(top_checkpoint):
    path, _ = top_checkpoint
    module = TaggerModule(
        model="resnet_tiny", input_spec=PIXEL_SPEC, init_checkpoint=str(path), freeze="full", lr=1e-3,
        backbone_lr_factor=0.1, warmup_fraction=0.0,
    )  # fmt: skip
    before = _snapshot(module.model)

    _train_steps(module, steps=1)

    optimizer = module.trainer.optimizers[0]
    head_group, backbone_group = optimizer.param_groups
    assert head_group["initial_lr"] == pytest.approx(1e-3)
    assert backbone_group["initial_lr"] == pytest.approx(1e-4)
    assert len(head_group["params"]) == 2
    assert not torch.equal(before["conv1.weight"], module.model.conv1.weight)


def test_freeze_without_checkpoint_rejected():
    with pytest.raises(ValueError, match="--model.init_checkpoint"):
        TaggerModule(model="resnet_tiny", input_spec=PIXEL_SPEC, freeze="head")


def test_unknown_freeze_policy_rejected():
    with pytest.raises(ValueError, match="must be one of"):
        TaggerModule(model="resnet_tiny", freeze="stem")
