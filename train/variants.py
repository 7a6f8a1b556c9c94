"""The named model variants of the paper's Tables 1-3 (``binaryhpe params NAME``) and their measurement.

Each variant is an ``H4WSpec`` (``binaryhpe.train.hand4whole``) plus the paper's figures for comparison; the
figures are never used to compute anything. ``measure(name)`` counts the variant part by part (each encoder
and the heads traced at its real input size on the meta device) and caches each part, so that the BiDRN
encoders shared by several variants are built once. ``count`` on a whole ``Hand4Whole`` gives the same
numbers (tests/test_params.py checks it).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import torch
import torch.nn as nn

from binaryhpe import BinaryHPEError
from binaryhpe.train.config import LCR_MODULES
from binaryhpe.train.hand4whole import (BODY_JOINTS, BODY_SIZE, FACE_SIZE, HAND_SIZE, HM_DEPTH, BodyRotationNet,
                                        BoxNet, FaceRegressor, H4WSpec, HandRotationNet, PositionNet, make_encoder)
from binaryhpe.train.opcount import PAPER, Convention, Count, Report, count, format_table

BIN = dict(body="bidrn", hand="bidrn", face="bidrn", boxnet="binary")


@dataclass(frozen=True)
class Variant:
    spec: H4WSpec
    description: str
    paper_params_m: float | None = None
    paper_ops_g: float | None = None
    where: str = ""


def _bnn(flavour: str, label: str, p, o) -> Variant:
    return Variant(H4WSpec(body="bnn", hand="bnn", face="bnn", baseline=flavour),
                   f"{label}: every backbone conv but the stem binarized ({flavour} structure), heads and "
                   "BoxNet full precision", p, o, "Table 1")


def _lcr(mods, label, p, o) -> Variant:
    return Variant(H4WSpec(**BIN, lcr_modules=tuple(mods)), f"BinaryHPE with {label} (Table 2a)", p, o, "Table 2a")


VARIANTS: dict[str, Variant] = {
    "hand4whole": Variant(H4WSpec(), "full-precision Hand4Whole", 77.84, 16.85, "Table 1"),
    "bnn": _bnn("bnn", "BNN", 21.61, 2.63),
    "xnor": _bnn("xnor", "XNOR", 21.61, 2.63),
    "dorefa": _bnn("dorefa", "DoReFa", 21.61, 2.63),
    "bireal": _bnn("bireal", "Bi-Real", 21.61, 2.63),
    "reactnet": _bnn("reactnet", "ReActNet", 21.66, 2.63),
    "recu": _bnn("recu", "ReCU", 21.71, 2.65),
    "fda": _bnn("fda", "FDA", 32.06, 2.81),
    "binaryhpe": Variant(H4WSpec(**BIN), "BinaryHPE: BiDRN encoders (full-precision BR), binarized BoxNet",
                         17.22, 2.50, "Table 1, Table 2a/2c"),
    "binaryhpe-no-br": Variant(H4WSpec(**BIN, block_residual="none"), "BinaryHPE without Block Residual",
                               11.5, 1.25, "Table 2c"),
    "binaryhpe-binarized-br": Variant(H4WSpec(**BIN, block_residual="binary"),
                                      "BinaryHPE with binarized Block Residual (= Table 3 binarized BoxNet)",
                                      11.68, 1.28, "Table 2c, Table 3"),
    "binaryhpe-fp-boxnet": Variant(H4WSpec(body="bidrn", hand="bidrn", face="bidrn", boxnet="fp",
                                           block_residual="binary"),
                                   "BinaryHPE (binarized BR) with a full-precision BoxNet", 21.81, 1.87, "Table 3"),
    "binaryhpe-lcr-base": _lcr((), "Base LCR only", 17.05, 2.48),
    "binaryhpe-lcr-dscr": _lcr(("dscr",), "Base LCR + DScR", 17.05, 2.48),
    "binaryhpe-lcr-fur": _lcr(("dscr", "fur"), "Base LCR + DScR + FUR", 17.14, 2.49),
    "binaryhpe-lcr-fdr": _lcr(("dscr", "fur", "fdr"), "Base LCR + DScR + FUR + FDR", 17.21, 2.50),
    "binaryhpe-lcr-dsar": _lcr(LCR_MODULES, "Base LCR + DScR + FUR + FDR + DSaR (= binaryhpe)", 17.22, 2.50),
    "binaryhpe-bin-body": Variant(H4WSpec(body="bidrn", boxnet="binary"),
                                  "only the body encoder (BiDRN) and the BoxNet binarized (Table 2d)",
                                  47.78, 7.45, "Table 2d"),
    "binaryhpe-bin-hand": Variant(H4WSpec(hand="bidrn", boxnet="binary"),
                                  "only the hand encoder (BiDRN) and the BoxNet binarized (Table 2d)",
                                  47.78, 7.45, "Table 2d"),
    "binaryhpe-bin-face": Variant(H4WSpec(face="bidrn", boxnet="binary"),
                                  "only the face encoder (BiDRN) and the BoxNet binarized (Table 2d)",
                                  57.08, 9.94, "Table 2d"),
}

NAMES = tuple(VARIANTS)


@functools.lru_cache(maxsize=None)
def _encoder(kind: str, depth: int, flavour: str, block_residual: str, lcr_modules: tuple) -> nn.Module:
    size = {50: BODY_SIZE, 18: FACE_SIZE}[depth]  # the module does not depend on it; traced at each real size
    with torch.device("meta"):
        return make_encoder(kind, depth, size, flavour=flavour, block_residual=block_residual,
                            lcr_modules=lcr_modules)


def _meta(*shape):
    return torch.empty(*shape, device="meta")


@functools.lru_cache(maxsize=None)
def _part(part: str, key: tuple, hands: int, conv: Convention) -> Count:
    """Params / OPs of one top-level part of Hand4Whole (cached by its structure and input)."""
    feat_b, feat_h, feat_f = _meta(1, 2048, 8, 6), _meta(hands, 2048, 8, 8), _meta(1, 512, 6, 6)
    if part.endswith("_encoder"):
        kind, flavour, br, lcr = key
        depth = 18 if part == "face_encoder" else 50
        size = {"body_encoder": BODY_SIZE, "hand_encoder": HAND_SIZE, "face_encoder": FACE_SIZE}[part]
        batch = hands if part == "hand_encoder" else 1
        mod, inputs = _encoder(kind, depth, flavour, br, lcr), (_meta(batch, 3, *size),)
    else:
        with torch.device("meta"):
            if part == "boxnet":
                mod, inputs = BoxNet(binary=key[0] == "binary"), (feat_b, _meta(1, BODY_JOINTS * HM_DEPTH, 8, 6))
            elif part == "body_position_net":
                mod, inputs = PositionNet(BODY_JOINTS), (feat_b,)
            elif part == "body_rotation_net":
                mod, inputs = BodyRotationNet(), (feat_b, feat_h)
            elif part == "hand_position_net":
                mod, inputs = PositionNet(20), (feat_h,)
            elif part == "hand_rotation_net":
                mod, inputs = HandRotationNet(), (feat_h,)
            elif part == "face_regressor":
                mod, inputs = FaceRegressor(), (feat_f,)
            else:  # pragma: no cover
                raise BinaryHPEError(f"unknown part {part!r}")
    return count(_Wrap(mod), inputs, conv).parts["m"]


class _Wrap(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, *x):
        return self.m(*x)


PARTS = ("body_encoder", "body_position_net", "body_rotation_net", "boxnet", "hand_encoder", "hand_position_net",
         "hand_rotation_net", "face_encoder", "face_regressor")


def measure_spec(spec: H4WSpec, conv: Convention = PAPER) -> Report:
    rep = Report()
    for part in PARTS:
        if part.endswith("_encoder"):
            key = (getattr(spec, part.split("_")[0]), spec.baseline, spec.block_residual, tuple(spec.lcr_modules))
        elif part == "boxnet":
            key = (spec.boxnet,)
        else:
            key = ()
        rep.parts[part] = _part(part, key, conv.hands, conv)
    return rep


def measure(name: str, conv: Convention = PAPER) -> Report:
    if name not in VARIANTS:
        raise BinaryHPEError(f"unknown variant {name!r}: expected one of {', '.join(VARIANTS)}")
    return measure_spec(VARIANTS[name].spec, conv)


def params_command(name: str, as_json: bool) -> int:
    """``binaryhpe params NAME [--json]``: the paper-convention Params / OPs of a named variant."""
    if name not in VARIANTS:
        raise BinaryHPEError(f"unknown variant {name!r}: expected one of {', '.join(VARIANTS)}")
    rep = measure(name)
    v = VARIANTS[name]
    if as_json:
        obj = {"name": name, "params_m": round(rep.params_m, 6), "ops_g": round(rep.ops_g, 6),
               "paper": {"params_m": v.paper_params_m, "ops_g": v.paper_ops_g, "where": v.where},
               "parts": {n: {"params_m": round(c.params / 1e6, 6), "ops_g": round(c.ops / 1e9, 6)}
                         for n, c in rep.parts.items()}}
        print(json.dumps(obj))
    else:
        print(format_table(f"{name}: {v.description}", rep))
        if v.paper_params_m is not None:
            print(f"paper ({v.where}): {v.paper_params_m} M params, {v.paper_ops_g} G OPs")
    return 0
