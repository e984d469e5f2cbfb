"""The batched, device-side training loop of geosal.models.training."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geosal.models import build_network
from geosal.models.training import TrainingConfig, augment, predict, train_classifier


def dihedral_variants(image: torch.Tensor) -> list[torch.Tensor]:
    """The 8 rotations / reflections of a ``[3, H, W]`` image."""
    out = []
    for flipped in (image, image.flip(2)):
        out += [torch.rot90(flipped, k, dims=(1, 2)) for k in range(4)]
    return out


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), side=st.sampled_from([8, 13, 32]))
def test_a_full_crop_without_jitter_is_one_of_the_eight_rotations_and_flips(seed, side):
    images = torch.randint(0, 256, (6, side, side, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
    config = TrainingConfig(crop=side, min_crop_area=1.0, max_aspect_ratio=1.0, colour_jitter=0.0)
    out = augment(images, config, torch.Generator().manual_seed(seed))
    assert out.shape == (6, 3, side, side) and out.dtype == torch.float32
    for image, result in zip(images, out):
        reference = image.permute(2, 0, 1).float() / 255
        assert min(float((v - result).abs().max()) for v in dihedral_variants(reference)) < 1e-5


def test_every_rotation_and_flip_is_drawn():
    image = torch.arange(16 * 16 * 3, dtype=torch.int64).remainder(251).to(torch.uint8).view(1, 16, 16, 3)
    out = augment(image.expand(200, -1, -1, -1), TrainingConfig(crop=16, min_crop_area=1.0, max_aspect_ratio=1.0,
                  colour_jitter=0.0), torch.Generator().manual_seed(1))
    variants = dihedral_variants(image[0].permute(2, 0, 1).float() / 255)
    drawn = {min(range(8), key=lambda k: float((variants[k] - o).abs().max())) for o in out}
    assert drawn == set(range(8))


def test_shrinking_is_anti_aliased():
    """A one-pixel checkerboard shrunk 2x must become flat grey (area average), not a moire of 0s and 1s."""
    board = ((torch.arange(32).view(-1, 1) + torch.arange(32).view(1, -1)) % 2 * 255).to(torch.uint8)
    images = board.view(1, 32, 32, 1).expand(4, -1, -1, 3).contiguous()
    out = augment(images, TrainingConfig(crop=16, min_crop_area=1.0, max_aspect_ratio=1.0, colour_jitter=0.0),
                  torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, torch.full_like(out, 0.5), atol=1e-5, rtol=0)


def test_random_crops_stay_inside_the_image_and_in_range():
    images = torch.randint(0, 256, (64, 40, 40, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    config = TrainingConfig(crop=24, min_crop_area=0.3, colour_jitter=0.4)
    out = augment(images, config, torch.Generator().manual_seed(3))
    assert out.shape == (64, 3, 24, 24) and 0 <= out.min() and out.max() <= 1
    # A constant image stays constant whatever the crop (no padding leaks in), up to jitter of its one colour.
    flat = augment(torch.full((16, 40, 40, 3), 77, dtype=torch.uint8), TrainingConfig(crop=24, min_crop_area=0.3,
                   colour_jitter=0.0), torch.Generator().manual_seed(4))
    torch.testing.assert_close(flat, torch.full_like(flat, 77 / 255), atol=1e-5, rtol=0)


def test_jitter_is_torchvisions_brightness_contrast_saturation():
    from torchvision.transforms.v2 import functional as TF

    images = torch.randint(0, 256, (5, 12, 12, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(5))
    config = TrainingConfig(crop=12, min_crop_area=1.0, max_aspect_ratio=1.0, colour_jitter=0.3)
    generator = torch.Generator().manual_seed(9)
    out = augment(images, config, generator)
    # Replay the draws: 8 geometry numbers (float64) per image, then 3 jitter factors per image.
    replay = torch.Generator().manual_seed(9)
    torch.rand(5, 8, generator=replay, dtype=torch.float64)
    factors = 1 + 0.3 * (2 * torch.rand(5, 3, generator=replay) - 1)
    plain = augment(images, TrainingConfig(crop=12, min_crop_area=1.0, max_aspect_ratio=1.0, colour_jitter=0.0),
                    torch.Generator().manual_seed(9))
    for i in range(5):
        expected = TF.adjust_brightness(plain[i], float(factors[i, 0]))
        expected = TF.adjust_contrast(expected, float(factors[i, 1]))
        expected = TF.adjust_saturation(expected, float(factors[i, 2]))
        torch.testing.assert_close(out[i], expected, atol=2e-3, rtol=0)


def two_class_problem(count: int = 64, side: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Dark images are class 0, bright ones class 1 (learnable in a few steps)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 2
    images = rng.integers(0, 60, (count, side, side, 3)) + labels[:, None, None, None] * 150
    return images.astype(np.uint8), labels.astype(np.int64)


def test_training_learns_is_seeded_and_validates_on_schedule():
    x, y = two_class_problem()
    config = TrainingConfig(epochs=5, batch_size=16, crop=14, lr=0.05, warmup_epochs=1, mix_probability=0.5,
                            colour_jitter=0.1, bf16=False, validate_every=2)
    histories = []
    for _ in range(2):
        torch.manual_seed(0)
        network = build_network("resnet10", 2)
        histories.append(train_classifier(network, x, y, x, y, (0.5,) * 3, (0.25,) * 3, config, log=lambda line: None))
    assert histories[0] == [{**h, "train_images_per_s": histories[0][i]["train_images_per_s"],
                             "seconds": histories[0][i]["seconds"]} for i, h in enumerate(histories[1])]
    assert [("val_accuracy" in h) for h in histories[0]] == [False, True, False, True, True]
    # Learning is checked without MixUp, whose soft targets leave 5 epochs' outcome to the arithmetic (with
    # MixUp this run ends at 50 % on 1 thread and 100 % on 2 of the same CPU).
    torch.manual_seed(0)
    network = build_network("resnet10", 2)
    history = train_classifier(network, x, y, x, y, (0.5,) * 3, (0.25,) * 3, replace(config, lr=0.02, mix_probability=0.0),
                               log=lambda line: None)
    assert history[-1]["val_accuracy"] == 1.0
    predicted = predict(network, torch.from_numpy(x), (0.5,) * 3, (0.25,) * 3)
    assert (predicted == y).all() and (predict(network, x, (0.5,) * 3, (0.25,) * 3) == predicted).all()


def test_another_seed_is_another_training():
    x, y = two_class_problem()
    config = TrainingConfig(epochs=1, batch_size=16, crop=14, lr=0.05, warmup_epochs=1, bf16=False)
    losses = []
    for seed in (0, 1):
        network = build_network("resnet10", 2)
        losses.append(train_classifier(network, x, y, x, y, (0.5,) * 3, (0.25,) * 3,
                                       TrainingConfig(**{**config.__dict__, "seed": seed}), log=lambda line: None)[0]["loss"])
    assert losses[0] != losses[1]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_training_matches_the_cpu_draws():
    x, y = two_class_problem()
    images = torch.from_numpy(x)
    config = TrainingConfig(crop=14, min_crop_area=0.5, colour_jitter=0.2)
    on_cpu = augment(images, config, torch.Generator().manual_seed(2))
    on_gpu = augment(images.cuda(), config, torch.Generator().manual_seed(2))
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, atol=1e-4, rtol=0)
