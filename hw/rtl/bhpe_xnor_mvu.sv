`ifndef BHPE_PKG_SV
`include "bhpe_pkg.sv"
`endif

// Binary (XNOR-popcount) matrix-vector unit, folded Pe x Simd.
//
// For each output pixel it consumes the window vector of N bits (1 = +1, 0 = -1), Simd elements a beat
// in (ky, kx, c) order, with a mask bit per element (1 = real tap, 0 = zero padding), and produces Cout
// signed accumulators, Pe lanes a beat in channel order (lane p of beat nf = channel nf*Pe + p):
//   acc[c] = 2 * popcount(~(a ^ w[c]) & mask) - popcount(mask)        (range -N..N, AccW bits)
// Cycles per pixel: NF*SF with NF = Cout/Pe, SF = N/Simd; pipeline latency 3 cycles + the stages below.
// Pipelining for the clock (bhpe_mvu_core): TreeLevels (a register every TreeLevels levels of the popcount
// trees, 0 = none) adds bhpe_pkg::tree_stages(Simd, TreeLevels) cycles of latency; the rate is unchanged.
//
// Weight ROM (InitFile, $readmemh, Depth NF*SF words of Pe*Simd bits): the word at address nf*SF + sf
// holds, at bit p*Simd + s, the weight (1 = +1, 0 = -1) of output channel nf*Pe + p for window element
// sf*Simd + s.
module bhpe_xnor_mvu #(
  parameter int unsigned N        = 9,
  parameter int unsigned Cout     = 4,
  parameter int unsigned Pe       = 1,
  parameter int unsigned Simd     = 1,
  parameter int unsigned AccW     = bhpe_pkg::mvu_acc_width(1'b1, N, 1, 1),
  parameter int unsigned TreeLevels = 0,
  parameter string       InitFile = ""
) (
  input  logic                 clk_i,
  input  logic                 rst_ni,
  input  logic [Simd-1:0]      in_tdata,
  input  logic [Simd-1:0]      in_tmask,
  input  logic                 in_tvalid,
  output logic                 in_tready,
  output logic [Pe*AccW-1:0]   out_tdata,
  output logic                 out_tvalid,
  input  logic                 out_tready
);
  localparam int unsigned NF   = Cout / Pe;
  localparam int unsigned SF   = N / Simd;

  if (Cout % Pe != 0) begin : gen_bad_pe
    $error("bhpe_xnor_mvu: Pe must divide Cout");
  end
  if (N % Simd != 0) begin : gen_bad_simd
    $error("bhpe_xnor_mvu: Simd must divide N");
  end

  logic en;  // the whole pipeline advances (bhpe_mvu_core: the output slot is free or draining)

  // ---- stage 1: operand and weights ----------------------------------------------------------------
  logic [Simd-1:0]    act1, mask1;
  logic [Pe*Simd-1:0] wgt1;
  logic               valid1, first1, last1;

  // verilator lint_off PINCONNECTEMPTY
  bhpe_mvu_fetch #(
    .Simd(Simd), .ElemW(1), .NF(NF), .SF(SF), .WordW(Pe * Simd), .WStream(1'b0), .InitFile(InitFile)
  ) u_fetch (
    .clk_i, .rst_ni, .in_tdata, .in_tmask, .in_tvalid, .in_tready,
    .w_tdata('0), .w_tvalid(1'b0), .w_tready(),  // weights from the ROM
    .en_i(en),
    .act_o(act1), .mask_o(mask1), .wgt_o(wgt1), .valid_o(valid1), .first_o(first1), .last_o(last1)
  );
  // verilator lint_on PINCONNECTEMPTY

  // ---- stages 2 and 3: XNOR + popcount per PE, accumulate over the synapse folds -------------------
  bhpe_mvu_core #(
    .Binary(1'b1), .Pe(Pe), .Simd(Simd), .InW(1), .WW(1), .AccW(AccW), .MulReg(0), .MulLut(1'b0),
    .TreeLevels(TreeLevels)
  ) u_core (
    .clk_i, .rst_ni, .act_i(act1), .mask_i(mask1), .wgt_i(wgt1), .valid_i(valid1), .first_i(first1),
    .last_i(last1), .en_o(en), .out_tdata, .out_tvalid, .out_tready
  );
endmodule
