"""The ``binaryhpe`` command line."""

from __future__ import annotations

import argparse
import json
import sys
import warnings

from binaryhpe import BinaryHPEError


def _cmd_params(args) -> int:
    from binaryhpe.train.variants import params_command

    return params_command(args.name, args.json)


def _cmd_export(args) -> int:
    from binaryhpe.train.models import build_model
    from binaryhpe.train.export import check_export, export_qonnx
    from binaryhpe.train.hardware import to_hardware

    if args.checkpoint:  # a trained whole-body model: its BiDRN encoders, each checked against execute_onnx
        from binaryhpe.train.loop import export_checkpoint

        out = args.output or "out/qonnx"
        man = export_checkpoint(args.checkpoint, out)
        print(json.dumps({"export": str(out), "step": man["step"], "encoders": man["encoders"]}, default=str))
        return 0
    model, x = build_model(args.model, seed=args.seed)
    to_hardware(model)
    path = export_qonnx(model, x, args.output or "out/model.onnx")
    res = check_export(model, path, x)
    print(json.dumps({"qonnx": str(path), **res}))
    return 0 if res["mismatches"] == 0 else 1


def _cmd_build(args) -> int:
    from binaryhpe.compile.flow import build_command

    return build_command(args)


def _cmd_train(args) -> int:
    from binaryhpe.train.loop import train_command

    return train_command(args)


def _cmd_evaluate(args) -> int:
    from binaryhpe.train.evaluate import evaluate_command

    return evaluate_command(args)


def _cmd_infer(args) -> int:
    from binaryhpe.train.infer import infer_command

    return infer_command(args)


def _cmd_bench(args) -> int:
    from binaryhpe.train.proxy_bench import bench_command

    return bench_command(args)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="binaryhpe", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    pp = sub.add_parser("params", help="Params / OPs by the paper's convention (Table 1-3 rows)")
    pp.add_argument("name", help="hand4whole, bnn, xnor, dorefa, bireal, reactnet, recu, fda, binaryhpe, ...")
    pp.add_argument("--json", action="store_true", help="print one JSON object")
    pp.set_defaults(func=_cmd_params)

    pe = sub.add_parser("export", help="export a built-in model (hardware mode) to QONNX and check it")
    pe.add_argument("model", nargs="?", default="tiny-bidrn")
    pe.add_argument("-o", "--output", default=None, help="the QONNX file (default out/model.onnx), or with "
                                                          "--checkpoint the folder (default out/qonnx)")
    pe.add_argument("--seed", type=int, default=0)
    pe.add_argument("--checkpoint", help="export a trained whole-body model (binaryhpe train's OUT/checkpoint.pt): "
                                         "its BiDRN encoders to QONNX files in the -o folder")
    pe.set_defaults(func=_cmd_export)

    pb = sub.add_parser("build", help="QONNX -> hardware graph -> RTL (-> simulation) into one folder")
    pb.add_argument("model", nargs="?", default="tiny-bidrn",
                    help="a QONNX file, a built-in network (tiny-bidrn, bidrn-18-face, bidrn-50-body, bidrn-50-hand) "
                         "or a whole model (binaryhpe: the paper-scale BinaryHPE; tiny-wholebody), which needs --device")
    pb.add_argument("-o", "--output", required=True, help="output folder")
    pb.add_argument("--sim", action="store_true", help="simulate with Verilator and check bit-exactness")
    pb.add_argument("--folding", help="JSON file of per-layer PE/SIMD overrides")
    pb.add_argument("--target-cycles", type=int, default=None, help="cycles per frame the folding aims at")
    pb.add_argument("--waves", action="store_true", help="write an FST waveform of the simulation")
    pb.add_argument("--inputs", metavar="FRAMES.npy",
                    help="with --sim: also simulate these frames (N x the QONNX input shape without its batch "
                         "dimension, float32, the values the QONNX graph takes) and write their outputs to "
                         "OUT/outputs.npy (N x the QONNX output shape without its batch dimension)")
    pb.add_argument("--seed", type=int, default=0)
    pb.add_argument("--device", help="FPGA device name (ecp5-25f, ecp5-85f, zynq-7020, zu3eg, zu7ev, alveo-u250) "
                                      "or a device JSON file: device-aware folding and estimates")
    pb.add_argument("--fps", type=float, help="target frames/s for the device-aware folding (default: as fast as fits)")
    pb.add_argument("--bitstream", action="store_true", help="Yosys + nextpnr-ecp5 + ecppack bitstream (ECP5)")
    pb.add_argument("--synth", action="store_true", help="synthesize the design with Yosys for the report")
    pb.add_argument("--target", default="fpga",
                    help="fpga (default: RTL) or mcu:NAME (C for a microcontroller: stm32f4, stm32h7, mps2-an505, "
                         "mps3-an547, or a target JSON file)")
    pb.add_argument("--backend", default="rtl", choices=["rtl", "hls4ml", "finn"],
                    help="rtl (default: our RTL), hls4ml (an hls4ml project under OUT/hls4ml/) or finn (FINN ONNX "
                         "and build configuration under OUT/finn/); with --sim each is checked against our reference")
    pb.add_argument("--arch", default=None, choices=["dataflow", "engine", "auto"],
                    help="dataflow (the default for one network: one hardware layer per network layer), engine (the "
                         "layer-sequential engine: one set of compute units programmed per layer by descriptors, "
                         "activations and weights in DRAM; OUT/engine/ holds the descriptor stream and the DRAM image; "
                         "docs/engine.md) or auto (needs --device: the faster design that fits; the default for the "
                         "whole model, binaryhpe / tiny-wholebody, whose report shows the candidates and the Pareto "
                         "front; docs/paper-scale.md)")
    pb.add_argument("--finn-flow", default="auto", choices=["auto", "streamline", "hw_graph"],
                    help="--backend finn: FINN's own streamlining of the QONNX (streamline), FINN's HW layers written "
                         "from our hardware graph (hw_graph, for residual networks), or auto (hw_graph when the graph "
                         "holds a residual kind)")
    pb.set_defaults(func=_cmd_build)

    pt = sub.add_parser("train", help="train a whole-body model (generated proxy data by default)")
    pt.add_argument("--config", default=None, help="a built-in configuration name or a JSON file (default: the tiny "
                                                   "whole-body configuration)")
    pt.add_argument("--steps", type=int, default=None, help="optimizer steps (default: from the configuration)")
    pt.add_argument("-o", "--output", required=True, help="output folder (checkpoint.pt, metrics.json)")
    pt.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    pt.add_argument("--data", default=None, metavar="NAME:PATH[,NAME:PATH...]",
                    help="train on real data: h36m:PATH, coco:PATH, mpii:PATH (agora:PATH), each the data set in "
                         "Hand4Whole's layout (docs/datasets.md); the default configuration is then the paper's "
                         "(binaryhpe: batch 24, lr 1e-4, 14 epochs)")
    pt.set_defaults(func=_cmd_train)

    pv = sub.add_parser("evaluate", help="the paper's metrics per part of a trained checkpoint on EHF / AGORA")
    pv.add_argument("--checkpoint", required=True, help="binaryhpe train's OUT/checkpoint.pt")
    pv.add_argument("--data", required=True, metavar="ehf:PATH[,agora:PATH]", help="evaluation data set(s)")
    pv.add_argument("-o", "--output", required=True, help="output folder (metrics.json, metrics.md)")
    pv.add_argument("--hardware", action="store_true", help="the encoders in the fixed-point hardware mode")
    pv.set_defaults(func=_cmd_evaluate)

    pi = sub.add_parser("infer", help="mesh (.obj) and overlay picture per image, float and hardware mode")
    pi.add_argument("--checkpoint", required=True, help="binaryhpe train's OUT/checkpoint.pt")
    pi.add_argument("images", nargs="+", metavar="IMAGE")
    pi.add_argument("-o", "--output", required=True, help="output folder")
    pi.set_defaults(func=_cmd_infer)

    pq = sub.add_parser("bench", help="benchmarks: 'proxy' trains the binarizers on generated data and ranks them")
    pq.add_argument("which", choices=["proxy"])
    pq.add_argument("-o", "--output", required=True, help="output folder (proxy.json, proxy.md, proxy.png)")
    pq.add_argument("--size", default="full", help="ci (a minute or two) or full (the benchmark, ~20 minutes)")
    pq.add_argument("--rows", default=None, help="comma-separated rows (mean, fp, bnn, reactnet, recu, bidrn-bbr, "
                                                 "bidrn; default all)")
    pq.add_argument("--steps", type=int, default=None, help="override the size's steps")
    pq.add_argument("--seeds", type=int, default=None, help="override the size's number of seeds")
    pq.set_defaults(func=_cmd_bench)

    args = p.parse_args(argv)
    warnings.filterwarnings("ignore", message="fast_hadamard_transform")  # brevitas import-time notice
    try:
        return args.func(args)
    except BinaryHPEError as e:
        print(f"binaryhpe: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
