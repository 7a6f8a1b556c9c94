"""The README's ``binaryhpe infer`` picture: a generated figure, the float-mode mesh, the hardware-mode mesh.

    binaryhpe train --config CFG.json --steps N -o RUN          # the tiny whole-body model on generated data
    python benchmarks/readme_overlay.py --checkpoint RUN/checkpoint.pt [-o out/overlay] [--seed 3]

Renders one held-out generated SMPL-X figure at 256x192 (``ProxyDataset``, split "test": not a training
sample), writes it as ``OUT/figure.png``, runs the ``binaryhpe infer`` command on it (``OUT/infer/``: the meshes
as ``.obj``, the overlays, ``infer.json``) and puts picture | float mode | hardware mode side by side in
``OUT/infer_overlay.png`` (a 96-colour palette PNG, small enough for the README). It prints the checkpoint's
step, its held-out metrics (``metrics.json`` next to the checkpoint) and the float-vs-hardware mesh distance.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("-o", "--output", default="out/overlay")
    ap.add_argument("--seed", type=int, default=3, help="which held-out figure (ProxyDataset seed)")
    a = ap.parse_args(argv)
    from PIL import Image

    from binaryhpe.cli import main as cli
    from binaryhpe.train.data.proxy import ProxyConfig, ProxyDataset, default_layer

    out = pathlib.Path(a.output)
    out.mkdir(parents=True, exist_ok=True)
    ds = ProxyDataset(1, seed=a.seed, split="test", cfg=ProxyConfig(img_size=(256, 192)), layer=default_layer())
    img = (ds[0]["img"].permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)
    fig = out / "figure.png"
    Image.fromarray(img).save(fig)
    rc = cli(["infer", "--checkpoint", str(a.checkpoint), str(fig), "-o", str(out / "infer")])
    if rc != 0:
        return rc
    doc = json.loads((out / "infer" / "infer.json").read_text())
    row = doc["images"][0]
    panels = [Image.open(fig).convert("RGB")] + [
        Image.open(out / "infer" / row["files"][m]["overlay"]).convert("RGB") for m in ("float", "hardware")]
    w, h = sum(p.width for p in panels) + 8 * (len(panels) - 1), max(p.height for p in panels)
    canvas = Image.new("RGB", (w, h), (255, 255, 255))
    x = 0
    for p in panels:
        canvas.paste(p, (x, 0))
        x += p.width + 8
    png = out / "infer_overlay.png"
    canvas.quantize(colors=96).save(png, optimize=True)
    metrics = pathlib.Path(a.checkpoint).parent / "metrics.json"
    m = json.loads(metrics.read_text()) if metrics.is_file() else {}
    shown = [k for k in ("mpvpe", "pa_mpvpe", "pa_mpjpe") if k in m]
    print(f"checkpoint step {doc['step']}; held-out ({m.get('held_out_samples', '?')} generated samples): "
          + (", ".join(f"{k.upper()} {m[k]:.1f} mm" for k in shown) or "no metrics.json"))
    print(f"float vs hardware mode: {row['float_vs_hardware_mm']:.1f} mm mean vertex distance")
    print(f"-> {png} ({png.stat().st_size / 1000:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
