"""The model zoo, local weight loading and checkpoint round trips of the tagger module."""

import pytest
import torch

from jetnu.data.spec import InputSpec
from jetnu.models import MODEL_ZOO, create_model
from jetnu.models.module import TaggerModule, load_tagger
from jetnu.models.weights import load_backbone_weights


@pytest.mark.parametrize("name", sorted(MODEL_ZOO))
def test_zoo_entry_tiny_forward_and_gradients(name):
    torch.manual_seed(0)
    model = create_model(name, in_chans=2, num_classes=4)
    size = MODEL_ZOO[name].tiny_input_size
    images = torch.randn(2, 2, size, size)

    logits = model(images)
    assert logits.shape == (2, 4)
    assert torch.isfinite(logits).all()

    logits.sum().backward()
    without_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert without_grad == []


@pytest.mark.parametrize("name", sorted(MODEL_ZOO))
def test_zoo_entry_shares_timm_interface(name):
    model = create_model(name, in_chans=1, num_classes=2).eval()
    features = model.forward_features(torch.randn(1, 1, 32, 32))
    assert features.shape[1] == model.num_features
    model.reset_classifier(5)
    assert model(torch.randn(1, 1, 32, 32)).shape == (1, 5)


def test_unknown_model_suggests_closest():
    with pytest.raises(ValueError, match="Did you mean 'resnet50'"):
        create_model("resnet5O")


def test_weights_adapt_input_conv(tmp_path):
    """Three-channel weights load into a one-channel model by adapting the stem, not re-initialising it."""
    source = create_model("resnet_tiny", in_chans=3, num_classes=2)
    path = tmp_path / "rgb.pth"
    torch.save(source.state_dict(), path)

    target = create_model("resnet_tiny", in_chans=1, num_classes=2)
    report = load_backbone_weights(target, path)

    assert report.adapted == ["conv1.weight (3 -> 1 channels)"]
    expected_stem = source.conv1.weight.sum(dim=1, keepdim=True)
    torch.testing.assert_close(target.conv1.weight, expected_stem)
    torch.testing.assert_close(target.layer1[0].conv1.weight, source.layer1[0].conv1.weight)


def test_weights_replace_head_of_other_size(tmp_path):
    source = create_model("resnet_tiny", in_chans=1, num_classes=1000)
    path = tmp_path / "head1000.pth"
    torch.save({"state_dict": source.state_dict()}, path)

    target = create_model("resnet_tiny", in_chans=1, num_classes=2)
    report = load_backbone_weights(target, path)

    assert sorted(report.replaced_head) == ["fc.bias", "fc.weight"]
    torch.testing.assert_close(target.layer4[0].conv2.weight, source.layer4[0].conv2.weight)


def test_weights_other_backbone_names_layers(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(create_model("resnet18", in_chans=1, num_classes=2).state_dict(), path)

    with pytest.raises(ValueError, match=r"layer1\.0\.conv2\.weight: file \(64, 64, 3, 3\) vs model \(16, 16, 3, 3\)"):
        load_backbone_weights(create_model("resnet_tiny", in_chans=1, num_classes=2), path)


def test_weights_missing_file():
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_backbone_weights(create_model("resnet_tiny"), "nope.pth")


def test_checkpoint_round_trip_keeps_spec_and_scores(tmp_path):
    import lightning.pytorch as pl

    spec = InputSpec(height=16, width=16, window_eta=0.8)
    module = TaggerModule(model="resnet_tiny", input_spec=spec)
    trainer = pl.Trainer(accelerator="cpu", max_epochs=0, logger=False, enable_checkpointing=False)
    trainer.strategy.connect(module)
    path = tmp_path / "m.ckpt"
    trainer.save_checkpoint(path)

    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint["input_spec"] == spec.to_dict()

    reloaded = load_tagger(path)
    assert reloaded.input_spec == spec
    images = torch.rand(3, 1, 16, 16)
    module.eval()
    torch.testing.assert_close(reloaded.predict_scores(images), module.predict_scores(images), rtol=0, atol=0)


def test_load_tagger_rejects_foreign_file(tmp_path):
    path = tmp_path / "plain.pth"
    torch.save({"a": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="not a jetnu checkpoint"):
        load_tagger(path)
