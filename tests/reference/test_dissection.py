"""Network dissection: a planted concept unit scores IoU 1; the shapes CNN has shape detectors."""

import pytest
import torch
from torch import nn

from kb.reference.dissection import network_dissection, unit_masks
from kb.reference.models import make_shapes


class Planted(nn.Module):
    """``units`` (an identity to hook) outputs 3 maps: concept 0's mask, noise, and a dead (all-zero) unit."""

    def __init__(self, concept):
        super().__init__()
        self.concept, self.units = concept, nn.Identity()

    def forward(self, x):
        noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(0))
        return self.units(torch.cat([self.concept.float(), noise, torch.zeros_like(x)], 1)).sum((1, 2, 3))


@pytest.fixture()
def concepts():
    g = torch.Generator().manual_seed(0)
    masks = torch.zeros(32, 2, 16, 16, dtype=torch.bool)
    for i in range(32):
        r, c = torch.randint(0, 10, (2,), generator=g).tolist()
        masks[i, 0, r:r + 5, c:c + 5] = True  # concept 0: a square
        r, c = torch.randint(0, 12, (2,), generator=g).tolist()
        masks[i, 1, r:r + 4, c:c + 2] = True  # concept 1: a small bar elsewhere
    return masks


def test_planted_unit_has_iou_one_with_its_concept(concepts):
    model = Planted(concepts[:, :1])
    iou = network_dissection(model, torch.zeros(32, 1, 16, 16), "units", concepts)
    assert iou.shape == (3, 2)
    assert float(iou[0, 0]) == pytest.approx(1.0)
    assert float(iou[0, 1]) < 0.1 and float(iou[1].max()) < 0.05  # measured 0.0x: noise matches nothing
    assert float(iou[2].max()) == 0.0  # a dead unit has an empty mask, not a full one


def test_unit_masks_threshold_at_the_top_quantile():
    acts = torch.arange(400.0).view(4, 1, 10, 10)  # values 0..399
    masks = unit_masks(acts, (10, 10), quantile=0.9)
    assert masks.sum() == 40 and masks[-1, 0, 6:].all() and not masks[:-1].any()  # 360..399
    assert unit_masks(acts, (20, 20), quantile=0.9).shape == (4, 1, 20, 20)  # upsampled to the concept size


def test_shapes_cnn_has_shape_detectors(shapes):
    x, y = make_shapes(256, seed=7)
    shape = x > 0.5  # the noise-free shape (noise std 0.1)
    concepts = torch.cat([shape, ~shape], 1)
    for layer in ("1", "4"):  # 16x16 first conv, 8x8 second conv (upsampled)
        iou = network_dissection(shapes.model, x, layer, concepts, quantile=0.9, batch_size=100)
        best = int(iou[:, 0].argmax())
        assert iou[best, 0] > 0.3  # measured 0.52 (layer 1), 0.45 (layer 4); the shape covers 5% of pixels
        assert iou[best, 0] > 2 * iou[best, 1]
