"""Video export: mp4 round trip, atomic writes, contact sheets."""

import numpy as np
import pytest

from engine.video import contact_sheet, read_mp4, to_uint8_frames, write_mp4


def test_mp4_round_trip(tmp_path):
    x = np.linspace(0, 255, 64).astype(np.uint8)
    frames = np.stack([np.stack([np.tile(np.roll(x, 4 * i), (48, 1))] * 3, -1) for i in range(9)])
    path = write_mp4(frames, tmp_path / "a" / "v.mp4", fps=8)
    back = read_mp4(path)
    assert back.shape == (9, 48, 64, 3)
    assert np.abs(back.astype(int) - frames.astype(int)).mean() < 3
    assert not list(tmp_path.rglob("*.partial.mp4"))


def test_a_failed_write_is_one_line_and_leaves_no_file(tmp_path):
    (tmp_path / "v.partial.mp4").mkdir()  # ffmpeg cannot open its output
    with pytest.raises(OSError) as err:
        write_mp4(np.zeros((3, 32, 32, 3), np.uint8), tmp_path / "v.mp4")
    message = str(err.value)
    assert (
        message.startswith(f"could not write the video {str(tmp_path / 'v.mp4')!r}") and "\n" not in message
    )
    assert not (tmp_path / "v.mp4").exists()


def test_odd_sizes_and_bad_arrays_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="even frame sizes"):
        write_mp4(np.zeros((3, 33, 32, 3), np.uint8), tmp_path / "odd.mp4")
    with pytest.raises(ValueError, match="uint8"):
        write_mp4(np.zeros((3, 32, 32, 3), np.float32), tmp_path / "f.mp4")


def test_to_uint8_and_contact_sheet():
    import torch

    video = torch.linspace(-1, 1, 5).view(1, 1, 5, 1, 1).expand(1, 3, 5, 16, 16)
    frames = to_uint8_frames(video)
    assert frames.shape == (5, 16, 16, 3) and frames[0].max() == 0 and frames[-1].min() == 255
    sheet = contact_sheet(frames, max_frames=5)
    assert sheet.shape[0] >= 96 and sheet.shape[1] > 5 * 96
