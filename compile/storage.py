"""Where the weight memories go: block RAM / LUT RAM as each kind's resource model places them, UltraRAM,
or DRAM (streamed into a weight port). Each kind says what it has (``HwLayer.weight_memory()``: width,
depth, bits, block RAMs, the placements it allows); this module only chooses.

- :func:`plan_storage` -- per device, the layers whose ROMs move out of block RAM until the budget holds.
- :func:`apply_storage` -- turn a plan's ``"dram"`` layers into streamed-weight units (``weight_source =
  "stream"``) before the RTL is generated, so that the top level has their ``w_<layer>`` ports.
"""

from __future__ import annotations

from binaryhpe import BinaryHPEError
from binaryhpe.compile.devices import load_device
from binaryhpe.compile.estimate import UTIL_LIMIT, estimate, uram_blocks
from binaryhpe.compile.graph import HwGraph


def apply_storage(g: HwGraph, storage: dict) -> list[str]:
    """Make every MVU that ``storage`` places in ``"dram"`` a streamed-weight MVU (``weight_source =
    "stream"``: RTL ``bhpe_mvu_wstream`` with a top-level ``w_<layer>`` weight port); returns their names.
    Call it on the graph before the RTL is generated (``uram`` placements keep their ROM)."""
    names = []
    for lay in g.layers:
        if storage.get(lay.name) == "dram":
            mem = lay.weight_memory()
            if mem is None or "dram" not in mem.placements:
                raise BinaryHPEError(f"layer {lay.name}: kind {type(lay).__name__} cannot stream its weights "
                                     "from DRAM")
            lay.weight_source = "stream"
            names.append(lay.name)
    return names


def plan_storage(g: HwGraph, device) -> dict:
    """Move MVU weight ROMs out of block RAM until the BRAM18 budget holds: first to UltraRAM (where the
    device has it), then to DRAM, taking first the layers that save the most BRAM per DRAM bit a frame
    (large matrices used at few pixels: the deep layers)."""
    return plan_storage_multi([g], device)[0]


def plan_storage_multi(graphs: list, device, rates: list | None = None) -> list[dict]:
    """:func:`plan_storage` for several graphs sharing one device (``rates``: passes a frame of each)."""
    dev = load_device(device)
    rates = rates or [1] * len(graphs)
    storages: list[dict] = [{} for _ in graphs]
    limit = {k: int(dev.budget()[k] * UTIL_LIMIT[k]) for k in ("bram18", "uram")}
    bram = uram = 0
    cands = []
    for i, g in enumerate(graphs):
        t = estimate(g, None)["totals"]
        bram, uram = bram + t["bram18"], uram + t["uram"]
        for lay in g.layers:
            mem = lay.weight_memory()
            if mem is not None and mem.bram18:
                if not {"uram", "dram"} & set(mem.placements):
                    continue
                cands.append((mem.bram18 / (mem.bits * lay.pixels * rates[i]), mem.bram18, i, lay))
    if bram <= limit["bram18"]:
        return storages
    # UltraRAM: biggest memories first (best packing)
    for _, b, i, lay in sorted(cands, key=lambda t: -t[1]):
        if bram <= limit["bram18"]:
            break
        mem = lay.weight_memory()
        u = uram_blocks(mem.width, mem.depth)
        if "uram" in mem.placements and uram + u <= limit["uram"]:
            storages[i][lay.name] = "uram"
            bram, uram = bram - b, uram + u
    for _, b, i, lay in sorted(cands, key=lambda t: -t[0]):
        if bram <= limit["bram18"]:
            break
        if lay.name not in storages[i] and "dram" in lay.weight_memory().placements:
            storages[i][lay.name] = "dram"
            bram -= b
    return storages
