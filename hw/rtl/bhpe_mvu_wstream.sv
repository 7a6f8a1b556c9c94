`ifndef BHPE_PKG_SV
`include "bhpe_pkg.sv"
`endif

// Matrix-vector unit with its weights streamed in (from DRAM through a DMA) instead of held in a ROM:
// the same numerics, folding, operand order and output order as bhpe_xnor_mvu (Binary = 1) and
// bhpe_fxp_mvu (Binary = 0), with one more AXI-Stream input, w_t*, that replaces the weight ROM.
//
//   Binary = 1: acc[c] = 2 * popcount(~(a ^ w[c]) & mask) - popcount(mask)   (InW = WW = 1, range -N..N)
//   Binary = 0: acc[c] = sum_i mask_i * a_i * w[c][i]                         (signed InW x WW, exact)
//
// Weight stream (w_tdata, one weight word a beat, WordW = Pe*Simd*WW bits; WW = 1 when Binary): for every
// output pixel the unit consumes the whole folded matrix once, NF*SF words in the order of the ROM
// addresses of the other MVUs: word nf*SF + sf (nf = 0..NF-1 outer, sf = 0..SF-1 inner) holds in slot
// p*Simd + s (slot 0 in the LSBs; bits [(p*Simd + s)*WW +: WW]) the weight of output channel nf*Pe + p for
// window element sf*Simd + s (1 = +1, 0 = -1 when Binary; two's complement otherwise). Pixels follow each
// other in raster order and frames back to back, with no header: pixels*NF*SF words a frame.
//
// One step of the folded matrix (one weight word) a cycle when both streams keep up: a pixel costs NF*SF
// cycles, or more when the weight stream delivers less than one word a cycle (then it sets the rate).
// A step takes a weight beat and, in neuron fold 0, an input beat in the same cycle: in_tready waits for
// w_tvalid and w_tready waits for in_tvalid there (AXI-Stream allows ready to depend on valid; no valid
// depends on a ready). Pipeline latency 3 cycles, as the ROM units: the same bhpe_mvu_fetch (with
// WStream = 1: its weight word comes from w_t* instead of its ROM) and the same bhpe_mvu_core, with the same
// pipelining for the clock (MulReg, TreeLevels: bhpe_pkg::mvu_extra_stages more cycles of latency).
module bhpe_mvu_wstream #(
  parameter bit          Binary = 1'b1,
  parameter int unsigned N      = 9,
  parameter int unsigned Cout   = 4,
  parameter int unsigned Pe     = 1,
  parameter int unsigned Simd   = 1,
  parameter int unsigned InW    = 1,
  parameter int unsigned WW     = 1,
  parameter int unsigned AccW   = bhpe_pkg::mvu_acc_width(Binary, N, InW, WW),
  parameter int unsigned MulReg     = 0,
  parameter bit          MulLut     = 1'b0,
  parameter int unsigned TreeLevels = 0,
  localparam int unsigned WordW = Pe * Simd * WW,
  localparam int unsigned DataW = Simd * InW
) (
  input  logic               clk_i,
  input  logic               rst_ni,
  input  logic [DataW-1:0]   in_tdata,
  input  logic [Simd-1:0]    in_tmask,
  input  logic               in_tvalid,
  output logic               in_tready,
  input  logic [WordW-1:0]   w_tdata,
  input  logic               w_tvalid,
  output logic               w_tready,
  output logic [Pe*AccW-1:0] out_tdata,
  output logic               out_tvalid,
  input  logic               out_tready
);
  localparam int unsigned NF = Cout / Pe;
  localparam int unsigned SF = N / Simd;

  if (Cout % Pe != 0) begin : gen_bad_pe
    $error("bhpe_mvu_wstream: Pe must divide Cout");
  end
  if (N % Simd != 0) begin : gen_bad_simd
    $error("bhpe_mvu_wstream: Simd must divide N");
  end

  logic en;  // the whole pipeline advances (bhpe_mvu_core: the output slot is free or draining)

  // ---- stage 1: step counters, operand (input or buffer) and the streamed weight word ----------------
  logic [DataW-1:0] act1;
  logic [Simd-1:0]  mask1;
  logic [WordW-1:0] wgt1;
  logic             valid1, first1, last1;

  bhpe_mvu_fetch #(
    .Simd(Simd), .ElemW(InW), .NF(NF), .SF(SF), .WordW(WordW), .WStream(1'b1)
  ) u_fetch (
    .clk_i, .rst_ni, .in_tdata, .in_tmask, .in_tvalid, .in_tready, .w_tdata, .w_tvalid, .w_tready, .en_i(en),
    .act_o(act1), .mask_o(mask1), .wgt_o(wgt1), .valid_o(valid1), .first_o(first1), .last_o(last1)
  );

  // ---- stages 2 and 3: the ROM units' compute stages ------------------------------------------------
  bhpe_mvu_core #(
    .Binary(Binary), .Pe(Pe), .Simd(Simd), .InW(InW), .WW(WW), .AccW(AccW), .MulReg(MulReg),
    .MulLut(MulLut), .TreeLevels(TreeLevels)
  ) u_core (
    .clk_i, .rst_ni, .act_i(act1), .mask_i(mask1), .wgt_i(wgt1), .valid_i(valid1), .first_i(first1),
    .last_i(last1), .en_o(en), .out_tdata, .out_tvalid, .out_tready
  );
endmodule
