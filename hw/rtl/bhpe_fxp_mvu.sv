`ifndef BHPE_PKG_SV
`include "bhpe_pkg.sv"
`endif

// Fixed-point matrix-vector unit, folded Pe x Simd (stem conv, full-precision Block Residual 1x1 conv,
// fully-connected layers).
//
// For each output pixel it consumes the window vector of N signed InW-bit elements, Simd elements a beat
// in (ky, kx, c) order, with a mask bit per element (1 = real tap, 0 = zero padding: the element is
// forced to 0, so padding is exact even if the data lane is not 0), and produces Cout signed
// accumulators, Pe lanes a beat in channel order (lane p of beat nf = channel nf*Pe + p):
//   acc[c] = sum_i mask_i * a_i * w[c][i]        (AccW = WW + InW + clog2(N) bits, exact)
// Cycles per pixel: NF*SF with NF = Cout/Pe, SF = N/Simd; pipeline latency 3 cycles + the stages below.
// Pipelining for the clock (bhpe_mvu_core): MulReg (a register after the multipliers, with 2 one before them
// as well) and TreeLevels (a register every TreeLevels levels of the adder tree, 0 = none) add
// bhpe_pkg::mvu_extra_stages(Binary, Simd, MulReg, TreeLevels) cycles of latency; the rate is unchanged.
// MulLut: the multipliers in logic (bhpe_mul), not in DSP blocks.
//
// Weight ROM (InitFile, $readmemh, Depth NF*SF words of Pe*Simd*WW bits): the word at address
// nf*SF + sf holds, at bits [(p*Simd + s)*WW +: WW], the two's-complement weight of output channel
// nf*Pe + p for window element sf*Simd + s.
module bhpe_fxp_mvu #(
  parameter int unsigned N        = 9,
  parameter int unsigned Cout     = 4,
  parameter int unsigned Pe       = 1,
  parameter int unsigned Simd     = 1,
  parameter int unsigned InW      = 8,
  parameter int unsigned WW       = 8,
  parameter int unsigned AccW     = bhpe_pkg::mvu_acc_width(1'b0, N, InW, WW),
  parameter int unsigned MulReg     = 0,
  parameter bit          MulLut     = 1'b0,
  parameter int unsigned TreeLevels = 0,
  parameter string       InitFile = ""
) (
  input  logic                 clk_i,
  input  logic                 rst_ni,
  input  logic [Simd*InW-1:0]  in_tdata,
  input  logic [Simd-1:0]      in_tmask,
  input  logic                 in_tvalid,
  output logic                 in_tready,
  output logic [Pe*AccW-1:0]   out_tdata,
  output logic                 out_tvalid,
  input  logic                 out_tready
);
  localparam int unsigned NF = Cout / Pe;
  localparam int unsigned SF = N / Simd;

  if (Cout % Pe != 0) begin : gen_bad_pe
    $error("bhpe_fxp_mvu: Pe must divide Cout");
  end
  if (N % Simd != 0) begin : gen_bad_simd
    $error("bhpe_fxp_mvu: Simd must divide N");
  end

  logic en;  // the whole pipeline advances (bhpe_mvu_core: the output slot is free or draining)

  // ---- stage 1: operand and weights ----------------------------------------------------------------
  logic [Simd*InW-1:0]   act1;
  logic [Simd-1:0]       mask1;
  logic [Pe*Simd*WW-1:0] wgt1;
  logic                  valid1, first1, last1;

  // verilator lint_off PINCONNECTEMPTY
  bhpe_mvu_fetch #(
    .Simd(Simd), .ElemW(InW), .NF(NF), .SF(SF), .WordW(Pe * Simd * WW), .WStream(1'b0), .InitFile(InitFile)
  ) u_fetch (
    .clk_i, .rst_ni, .in_tdata, .in_tmask, .in_tvalid, .in_tready,
    .w_tdata('0), .w_tvalid(1'b0), .w_tready(),  // weights from the ROM
    .en_i(en),
    .act_o(act1), .mask_o(mask1), .wgt_o(wgt1), .valid_o(valid1), .first_o(first1), .last_o(last1)
  );
  // verilator lint_on PINCONNECTEMPTY

  // ---- stages 2 and 3: Simd products and their sum per PE, accumulate over the synapse folds --------
  bhpe_mvu_core #(
    .Binary(1'b0), .Pe(Pe), .Simd(Simd), .InW(InW), .WW(WW), .AccW(AccW), .MulReg(MulReg),
    .MulLut(MulLut), .TreeLevels(TreeLevels)
  ) u_core (
    .clk_i, .rst_ni, .act_i(act1), .mask_i(mask1), .wgt_i(wgt1), .valid_i(valid1), .first_i(first1),
    .last_i(last1), .en_o(en), .out_tdata, .out_tvalid, .out_tready
  );
endmodule
