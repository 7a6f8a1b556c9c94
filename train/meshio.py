"""Meshes out: Wavefront .obj files and an overlay picture of a mesh on its input image.

The overlay projects the vertices with a pinhole camera (``cam``: a dict with ``focal`` (fx, fy) and
``princpt`` (cx, cy) in pixels of the image, and optionally ``trans`` (3,) added to the vertices first, as
Hand4Whole's ``cam_trans``; or a 3x3 intrinsics matrix) and fills the triangles far to near (painter's
algorithm, no z-buffer) with PIL, shaded by the angle between the face normal and the viewing ray.
"""

from __future__ import annotations

import pathlib

import numpy as np
import torch

from binaryhpe import BinaryHPEError


def _arr(x, name, dtype=np.float64):
    if torch.is_tensor(x):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def _check_mesh(vertices, faces, where):
    v = _arr(vertices, "vertices")
    f = _arr(faces, "faces", np.int64)
    if v.ndim != 2 or v.shape[1] != 3:
        raise BinaryHPEError(f"{where}: vertices have shape {v.shape}, expected (V, 3) (one mesh, not a batch)")
    if f.ndim != 2 or f.shape[1] != 3:
        raise BinaryHPEError(f"{where}: faces have shape {f.shape}, expected (F, 3)")
    if f.size and (f.min() < 0 or f.max() >= len(v)):
        raise BinaryHPEError(f"{where}: faces index vertex {int(f.max())} but there are {len(v)} vertices")
    return v, f


def write_obj(path, vertices, faces) -> pathlib.Path:
    """Write one mesh as a Wavefront .obj file (1-based face indices); returns the path."""
    v, f = _check_mesh(vertices, faces, f"write_obj({path})")
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"v {a:.6f} {b:.6f} {c:.6f}" for a, b, c in v]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in f]
    path.write_text("\n".join(lines) + "\n")
    return path


def _image_u8(image) -> np.ndarray:
    img = _arr(image, "image", np.float64) if torch.is_tensor(image) else np.asarray(image)
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[-1] not in (1, 3):
        img = np.transpose(img, (1, 2, 0))  # (C,H,W) as the model's input
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or img.shape[2] not in (1, 3):
        raise BinaryHPEError(f"overlay: image has shape {np.shape(image)}, expected (H, W, 3) or (3, H, W)")
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    if img.dtype != np.uint8:
        img = np.clip(np.asarray(img, np.float64) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return img


def _camera(cam):
    if isinstance(cam, dict):
        try:
            fx, fy = (float(x) for x in np.broadcast_to(_arr(cam["focal"], "focal"), (2,)))
            cx, cy = (float(x) for x in _arr(cam["princpt"], "princpt").reshape(2))
        except KeyError as e:
            raise BinaryHPEError(f"overlay: cam is missing key {e.args[0]!r} (needs 'focal' and 'princpt')") from None
        trans = _arr(cam.get("trans", np.zeros(3)), "trans").reshape(3)
        return fx, fy, cx, cy, trans
    K = _arr(cam, "cam")
    if K.shape != (3, 3):
        raise BinaryHPEError(f"overlay: cam has shape {K.shape}: give a dict with 'focal' and 'princpt' or a "
                             "3x3 matrix")
    return K[0, 0], K[1, 1], K[0, 2], K[1, 2], np.zeros(3)


def project(vertices, cam) -> np.ndarray:
    """(V, 2) pixel coordinates of camera-frame vertices under ``cam``."""
    fx, fy, cx, cy, trans = _camera(cam)
    v = _arr(vertices, "vertices") + trans
    z = np.where(np.abs(v[:, 2]) < 1e-9, 1e-9, v[:, 2])
    return np.stack([fx * v[:, 0] / z + cx, fy * v[:, 1] / z + cy], axis=1)


def overlay(image, vertices, faces, cam, color=(170, 200, 255), alpha: float = 0.8, face_colors=None) -> np.ndarray:
    """The image (H,W,3 uint8) with the mesh drawn over it. Faces behind the camera are left out."""
    from PIL import Image, ImageDraw

    v, f = _check_mesh(vertices, faces, "overlay")
    img = _image_u8(image)
    fx, fy, cx, cy, trans = _camera(cam)
    v = v + trans
    z = np.where(np.abs(v[:, 2]) < 1e-9, 1e-9, v[:, 2])
    uv = np.stack([fx * v[:, 0] / z + cx, fy * v[:, 1] / z + cy], axis=1)
    tri = v[f]  # (F,3,3)
    in_front = (tri[:, :, 2] > 1e-6).all(1)
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    ray = tri.mean(1)
    ray /= np.maximum(np.linalg.norm(ray, axis=1, keepdims=True), 1e-12)
    shade = 0.35 + 0.65 * np.abs((n * ray).sum(1))
    if face_colors is None:
        cols = np.asarray(color, np.float64)[None] * shade[:, None]
    else:
        cols = _arr(face_colors, "face_colors").reshape(len(f), 3)
    order = np.argsort(-tri[:, :, 2].mean(1), kind="stable")  # far first
    layer = Image.new("RGB", (img.shape[1], img.shape[0]))
    mask = Image.new("L", (img.shape[1], img.shape[0]))
    draw, mdraw = ImageDraw.Draw(layer), ImageDraw.Draw(mask)
    for i in order:
        if not in_front[i]:
            continue
        pts = [tuple(p) for p in uv[f[i]].tolist()]
        draw.polygon(pts, fill=tuple(int(c) for c in np.clip(cols[i], 0, 255)))
        mdraw.polygon(pts, fill=255)
    m = np.asarray(mask, np.float64)[:, :, None] / 255.0 * alpha
    out = img.astype(np.float64) * (1 - m) + np.asarray(layer, np.float64) * m
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def save_overlay(path, image, vertices, faces, cam, **kw) -> pathlib.Path:
    """``overlay`` written as a PNG; returns the path."""
    from PIL import Image

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(overlay(image, vertices, faces, cam, **kw)).save(path, format="PNG")
    return path
