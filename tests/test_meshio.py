"""Meshes out: .obj files read back, overlays fill exactly the projected triangles, nearer faces cover
farther ones, PNGs are written; the synthetic SMPL-X figure renders as a figure."""

import numpy as np
import pytest
import torch
from PIL import Image

from binaryhpe import BinaryHPEError
from binaryhpe.train import meshio

CAM = {"focal": (100.0, 100.0), "princpt": (32.0, 32.0)}


def test_write_obj_round_trip(tmp_path):
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1.5, 0], [0, 0, -2.25]])
    f = np.array([[0, 1, 2], [0, 2, 3]])
    p = meshio.write_obj(tmp_path / "m" / "a.obj", torch.tensor(v), f)
    lines = p.read_text().splitlines()
    vs = np.array([[float(x) for x in ln.split()[1:]] for ln in lines if ln.startswith("v ")])
    fs = np.array([[int(x) for x in ln.split()[1:]] for ln in lines if ln.startswith("f ")])
    np.testing.assert_allclose(vs, v)
    assert fs.tolist() == [[1, 2, 3], [1, 3, 4]]
    with pytest.raises(BinaryHPEError, match="faces index vertex 7"):
        meshio.write_obj(tmp_path / "b.obj", v, np.array([[0, 1, 7]]))


def test_overlay_fills_the_projected_triangle():
    # at depth 2 with focal 100 around (32, 32): x = 0.2 -> u = 42, y = 0.3 -> v = 47
    v = np.array([[0.0, 0.0, 2.0], [0.2, 0.0, 2.0], [0.0, 0.3, 2.0]])
    img = np.zeros((64, 64, 3), np.uint8)
    out = meshio.overlay(img, v, [[0, 1, 2]], CAM, color=(255, 255, 255), alpha=1.0)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    painted = out.sum(2) > 0
    # inside: the pixel near the centroid; outside: beyond each edge
    assert painted[37, 35] and painted[33, 33]
    assert not painted[30, 30] and not painted[33, 44] and not painted[49, 33] and not painted[45, 41]
    # area = 10 * 15 / 2 = 75 pixels, within the rasterizer's edge pixels
    assert 60 <= painted.sum() <= 110
    # facing the camera: full shade of the colour; alpha blends with the image
    # the face is seen at cos = 2 / |centroid| from its normal: shade 0.35 + 0.65 cos
    cos = 2.0 / np.linalg.norm(v.mean(0))
    assert abs(int(out[37, 35, 0]) - 255 * (0.35 + 0.65 * cos)) <= 1
    half = meshio.overlay(np.full((64, 64, 3), 100, np.uint8), v, [[0, 1, 2]], CAM, face_colors=[[200, 200, 200]],
                          alpha=0.5)
    assert half[37, 35].tolist() == [150, 150, 150] and half[5, 5].tolist() == [100, 100, 100]


def test_painter_order_and_behind_camera():
    near = [[-0.1, -0.1, 1.0], [0.1, -0.1, 1.0], [0.0, 0.1, 1.0]]
    far = [[-0.5, -0.5, 3.0], [0.5, -0.5, 3.0], [0.0, 0.5, 3.0]]
    behind = [[-1, -1, -1.0], [1, -1, -1.0], [0, 1, -1.0]]
    # the far face comes first in the list and last in the list: the near one wins either way
    for verts, faces, cols in ((near + far, [[0, 1, 2], [3, 4, 5]], [[255, 0, 0], [0, 0, 255]]),
                               (far + near, [[0, 1, 2], [3, 4, 5]], [[0, 0, 255], [255, 0, 0]])):
        out = meshio.overlay(np.zeros((64, 64, 3)), np.array(verts), faces, CAM, alpha=1.0, face_colors=cols)
        assert out[32, 32].tolist() == [255, 0, 0]  # the near (red) face covers the centre
        assert out[32 + 12, 32].tolist() == [0, 0, 255]  # only the far face reaches there
    out = meshio.overlay(np.zeros((64, 64, 3)), np.array(behind), [[0, 1, 2]], CAM, alpha=1.0)
    assert out.sum() == 0


def test_save_overlay_png_and_chw_tensor_input(tmp_path):
    img = torch.rand(3, 48, 40)  # the model's (3, H, W) input in [0, 1]
    v = np.array([[0.0, 0.0, 2.0], [0.2, 0.0, 2.0], [0.0, 0.3, 2.0]])
    K = np.array([[100, 0, 20], [0, 100, 24], [0, 0, 1.0]])
    p = meshio.save_overlay(tmp_path / "o" / "x.png", img, v, [[0, 1, 2]], K)
    back = np.asarray(Image.open(p))
    assert back.shape == (48, 40, 3)
    ref = np.clip(img.permute(1, 2, 0).numpy() * 255 + 0.5, 0, 255).astype(np.uint8)
    assert np.array_equal(back[2, 2], ref[2, 2]) and not np.array_equal(back[27, 23], ref[27, 23])
    with pytest.raises(BinaryHPEError, match="princpt"):
        meshio.overlay(img, v, [[0, 1, 2]], {"focal": 100})


def test_synthetic_figure_renders(tmp_path):
    from binaryhpe.train import smplx_model as sm

    v, f, *_ = sm.synthetic_layout(1000)
    v = v * np.array([1, -1, 1]) + np.array([0, 0, 3.0])  # image y points down; 3 m in front
    out = meshio.overlay(np.zeros((128, 128, 3)), v, f, {"focal": 60, "princpt": (64, 64)}, alpha=1.0)
    mask = out.sum(2) > 0
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    height, width = rows[-1] - rows[0], cols[-1] - cols[0]
    # about 1.7 m tall and 1.6 m wide at 3 m with focal 60: ~34 x ~32 pixels; a thin figure, not a blob
    assert 28 <= height <= 40 and 26 <= width <= 40
    assert mask.sum() < 0.5 * height * width
