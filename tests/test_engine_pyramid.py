"""Pyramid geometry and shape validation (DESIGN §3)."""

import pytest

from engine.pyramid import stage_geometry, validate_video_shape


def test_real_model_canonical_size():
    g = stage_geometry(81, 448, 832)
    assert [s.latent_shape[1:] for s in g.stages] == [(6, 14, 26), (11, 28, 52), (21, 56, 104)]
    assert [s.tokens for s in g.stages] == [546, 4004, 30576]
    assert [s.pixel_shape for s in g.stages] == [(21, 112, 208), (41, 224, 416), (81, 448, 832)]
    assert g.stages[0].sigma_start == 1.0 and g.stages[-1].sigma_end == 0.0
    # stage ends at the nominal thirds; later stages start at the jump level, above the previous end
    assert [round(s.sigma_end, 4) for s in g.stages] == [0.6667, 0.3333, 0.0]
    assert g.stages[1].sigma_start > 2 / 3 and g.stages[2].sigma_start > 1 / 3


def test_tiny_default_size():
    g = stage_geometry(17, 128, 128)
    assert [s.latent_shape[1:] for s in g.stages] == [(2, 4, 4), (3, 8, 8), (5, 16, 16)]


def test_custom_boundaries():
    g = stage_geometry(17, 128, 128, boundaries=(1.0, 0.8, 0.4, 0.0))
    assert [s.sigma_end for s in g.stages] == [0.8, 0.4, 0.0]
    with pytest.raises(ValueError, match="strictly decrease"):
        stage_geometry(17, 128, 128, boundaries=(1.0, 0.4, 0.8, 0.0))


@pytest.mark.parametrize(
    "shape, message",
    [
        ((81, 480, 832), "height must be divisible by 64.*got 480, nearest valid: 448 or 512"),
        ((81, 448, 830), "width must be divisible by 64.*nearest valid: 768 or 832"),
        ((80, 448, 832), "frames must be 1 or of the form 16·k \\+ 1.*nearest valid: 65 or 81"),
        ((21, 448, 832), "nearest valid: 17 or 33"),
        ((81, 32, 64), "nearest valid: 64"),
    ],
)
def test_invalid_shapes_name_the_nearest_valid_sizes(shape, message):
    with pytest.raises(ValueError, match=message):
        validate_video_shape(*shape)


def test_two_stage_pyramid_rules():
    validate_video_shape(9, 96, 96, num_stages=2)
    with pytest.raises(ValueError, match="divisible by 32"):
        validate_video_shape(9, 80, 96, num_stages=2)
