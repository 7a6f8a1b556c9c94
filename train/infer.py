"""``binaryhpe infer --checkpoint CKPT IMAGE... -o OUT``: the mesh and an overlay picture per image.

Each image is letterboxed (scaled to fit, centred, padded grey) into the model's input size
(``WholeBodyConfig.image_size``), taken as the body crop (no person detector: the person should fill the
picture), and run twice:

- float mode: the trained model as it trains;
- hardware mode: the same weights with the encoders frozen to the fixed-point hardware mode
  (``binaryhpe.train.hardware.to_hardware``: the integers the hardware computes for the BiDRN encoders, the
  part that goes to the accelerator in every build); the heads, the BoxNet and SMPL-X run in float, as on the
  host.

Per image and mode: ``OUT/<stem>_<mode>.obj`` (the SMPL-X mesh, camera frame: root-relative vertices plus the
predicted ``cam_trans``) and ``OUT/<stem>_<mode>.png`` (the mesh drawn over the original picture, through the
model's camera mapped back from the letterbox). ``OUT/infer.json`` lists the files and, per image, the mean
distance between the float and hardware meshes (mm).
"""

from __future__ import annotations

import copy
import json
import pathlib

import numpy as np
import torch

from binaryhpe import BinaryHPEError

SMPLX_OUT = ("root_pose", "body_pose", "lhand_pose", "rhand_pose", "jaw_pose", "expr", "shape")


def load_image(path) -> np.ndarray:
    from PIL import Image

    p = pathlib.Path(path)
    if not p.is_file():
        raise BinaryHPEError(f"infer: image {p} not found")
    try:
        return np.asarray(Image.open(p).convert("RGB"))
    except OSError as e:
        raise BinaryHPEError(f"infer: {p} is not an image PIL can read ({e})") from None


def letterbox(img: np.ndarray, size) -> tuple:
    """(tensor (3, H, W) in [0, 1], scale, (ox, oy)): ``img`` scaled by ``scale`` and placed at (ox, oy)."""
    from PIL import Image

    H, W = size
    h, w = img.shape[:2]
    s = min(H / h, W / w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    ox, oy = (W - nw) / 2, (H - nh) / 2
    canvas = np.full((H, W, 3), 127, np.uint8)
    r = np.asarray(Image.fromarray(img).resize((nw, nh), Image.BILINEAR))
    canvas[int(oy):int(oy) + nh, int(ox):int(ox) + nw] = r
    t = torch.from_numpy(canvas.astype(np.float32) / 255.0).permute(2, 0, 1).contiguous()
    return t, (nw / w, nh / h), (int(ox), int(oy))


def original_camera(size, focal_px: float, scale, offset) -> dict:
    """The model's camera (focal ``focal_px`` pixels of the input, principal point at the input's centre) in
    pixels of the original picture that ``letterbox`` placed at ``offset`` with ``scale``: input pixel
    u_in = u * scale + offset."""
    H, W = size
    (sx, sy), (ox, oy) = scale, offset
    return {"focal": (focal_px / sx, focal_px / sy), "princpt": ((W / 2 - ox) / sx, (H / 2 - oy) / sy)}


@torch.no_grad()
def predict_mesh(model, layer, x: torch.Tensor) -> tuple:
    """(root-relative vertices (V, 3), cam_trans (3,)) for one input image tensor."""
    o = model(x[None])
    m = layer({k: o[k].float().cpu() for k in SMPLX_OUT})
    v = (m["vertices"] - m["joints"][:, :1])[0].numpy().astype(np.float64)
    return v, o["cam_trans"][0].float().cpu().numpy().astype(np.float64)


def infer(checkpoint, images, out_dir, log=print) -> dict:
    from binaryhpe.train import meshio
    from binaryhpe.train.hardware import to_hardware
    from binaryhpe.train.evaluate import load_model

    if not images:
        raise BinaryHPEError("infer: no image given")
    model, cfg, layer, state = load_model(checkpoint, "cpu")
    hw = to_hardware(copy.deepcopy(model))
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    H, W = cfg.image_size
    f_in = cfg.focal * H  # the model's camera: focal in pixels of the input, principal point at its centre
    rows = []
    stems = {}
    for path in images:
        img = load_image(path)
        x, (sx, sy), (ox, oy) = letterbox(img, cfg.image_size)
        stem = pathlib.Path(path).stem
        stems[stem] = stems.get(stem, 0) + 1
        if stems[stem] > 1:
            stem = f"{stem}_{stems[stem]}"
        row = {"image": str(path), "files": {}}
        verts = {}
        for mode, net in (("float", model), ("hardware", hw)):
            v, trans = predict_mesh(net, layer, x)
            verts[mode] = v
            obj = meshio.write_obj(out / f"{stem}_{mode}.obj", v + trans, layer.faces)
            cam = dict(original_camera(cfg.image_size, f_in, (sx, sy), (ox, oy)), trans=trans)
            png = meshio.save_overlay(out / f"{stem}_{mode}.png", img, v, layer.faces, cam)
            row["files"][mode] = {"obj": obj.name, "overlay": png.name}
        row["float_vs_hardware_mm"] = float(np.linalg.norm(verts["float"] - verts["hardware"], axis=1).mean() * 1000)
        rows.append(row)
        log(f"{path}: {row['files']['float']['obj']}, {row['files']['float']['overlay']}, hardware mode "
            f"{row['files']['hardware']['obj']} ({row['float_vs_hardware_mm']:.2f} mm from float)")
    doc = {"checkpoint": str(checkpoint), "step": int(state["step"]), "config": cfg.name, "images": rows}
    (out / "infer.json").write_text(json.dumps(doc, indent=2) + "\n")
    return doc


def infer_command(args) -> int:
    infer(args.checkpoint, args.images, args.output, log=lambda *a: print(*a, flush=True))
    print(f"-> {args.output}/infer.json")
    return 0


__all__ = ["infer", "infer_command", "letterbox", "load_image", "original_camera", "predict_mesh"]
