`ifndef BHPE_PKG_SV
`include "bhpe_pkg.sv"
`endif

// Compute stages of the matrix-vector units (bhpe_xnor_mvu, bhpe_fxp_mvu, bhpe_mvu_wstream): what follows
// the operand fetch (a ROM or a weight stream) is the same in all of them.
//
// Input: one registered fetch step a cycle (operand act_i, mask_i, weight word wgt_i, first_i / last_i
// synapse-fold flags, valid_i). Stage 2 forms, per PE, the dot product of one synapse fold and registers
// it; stage 3 accumulates over the SF synapse folds and hands the Pe accumulators to the output register on
// the last one. The pipeline advances when en_o is high (the output slot is free or draining).
//
//   Binary = 1: dot = 2 * popcount(~(a ^ w) & mask) - popcount(mask)   (InW = WW = 1; the two popcounts are
//               registered, the difference is formed in stage 3)
//   Binary = 0: dot = sum_s mask_s * a_s * w_s                         (signed InW x WW products, adder tree)
//
// Products and sums are taken in AccW bits: two's-complement wrap-around is exact because the final
// accumulator fits in AccW bits.
module bhpe_mvu_core #(
  parameter bit          Binary = 1'b1,
  parameter int unsigned Pe     = 1,
  parameter int unsigned Simd   = 1,
  parameter int unsigned InW    = 1,
  parameter int unsigned WW     = 1,
  parameter int unsigned AccW   = 8
) (
  input  logic                  clk_i,
  input  logic                  rst_ni,
  input  logic [Simd*InW-1:0]   act_i,
  input  logic [Simd-1:0]       mask_i,
  input  logic [Pe*Simd*WW-1:0] wgt_i,
  input  logic                  valid_i,
  input  logic                  first_i,
  input  logic                  last_i,
  output logic                  en_o,
  output logic [Pe*AccW-1:0]    out_tdata,
  output logic                  out_tvalid,
  input  logic                  out_tready
);
  logic out_valid_q;
  assign en_o = ~out_valid_q | out_tready;

  // ---- stage 2: per-PE dot product of one synapse fold (registered) ---------------------------------
  logic            valid2_q, first2_q, last2_q;
  logic [AccW-1:0] term [Pe];  // the registered dot product, as stage 3 adds it

  if (Binary) begin : gen_xnor
    if (InW != 1 || WW != 1) begin : gen_bad_binary
      $error("bhpe_mvu_core: Binary needs InW = WW = 1");
    end
    localparam int unsigned CntW = bhpe_pkg::count_width(Simd);
    logic [CntW-1:0] pc [Pe];
    logic [CntW-1:0] pc_q [Pe];
    logic [CntW-1:0] pcm, pcm_q;
    for (genvar p = 0; p < Pe; p++) begin : gen_pe_popcount
      logic [Simd-1:0] agree;
      assign agree = ~(act_i ^ wgt_i[p*Simd +: Simd]) & mask_i;
      bhpe_popcount #(.Width(Simd)) u_pc (.bits_i(agree), .count_o(pc[p]));
      assign term[p] = (AccW'(pc_q[p]) << 1) - AccW'(pcm_q);
    end
    bhpe_popcount #(.Width(Simd)) u_pcm (.bits_i(mask_i), .count_o(pcm));
    always_ff @(posedge clk_i) begin
      if (en_o && valid_i) begin
        pc_q  <= pc;
        pcm_q <= pcm;
      end
    end
  end else begin : gen_fxp
    logic signed [AccW-1:0] dot [Pe];
    logic signed [AccW-1:0] dot_q [Pe];
    for (genvar p = 0; p < Pe; p++) begin : gen_pe_dot
      logic [Simd*AccW-1:0] prods;
      for (genvar s = 0; s < Simd; s++) begin : gen_simd_mul
        logic signed [InW-1:0]    a;
        logic signed [WW-1:0]     w;
        logic signed [InW+WW-1:0] prod;  // InW x WW multiplier (one DSP for 8x8 .. 18x25)
        assign a = mask_i[s] ? act_i[s*InW +: InW] : '0;
        assign w = wgt_i[(p*Simd + s)*WW +: WW];
        assign prod = a * w;
        assign prods[s*AccW +: AccW] = AccW'(prod);
      end
      bhpe_adder_tree #(.Count(Simd), .Width(AccW)) u_sum (.terms_i(prods), .sum_o(dot[p]));
      assign term[p] = dot_q[p];
    end
    always_ff @(posedge clk_i) begin
      if (en_o && valid_i) dot_q <= dot;
    end
  end

  always_ff @(posedge clk_i) begin
    if (!rst_ni) valid2_q <= 1'b0;
    else if (en_o) valid2_q <= valid_i;
  end
  always_ff @(posedge clk_i) begin
    if (en_o && valid_i) begin
      first2_q <= first_i;
      last2_q  <= last_i;
    end
  end

  // ---- stage 3: accumulate, hand a beat to the output register on the last synapse fold ------------
  logic [AccW-1:0] acc_q [Pe];
  logic [AccW-1:0] acc_d [Pe];
  logic [AccW-1:0] out_q [Pe];

  always_comb begin
    for (int p = 0; p < Pe; p++) begin
      acc_d[p] = (first2_q ? '0 : acc_q[p]) + term[p];
    end
  end

  always_ff @(posedge clk_i) begin
    if (!rst_ni) out_valid_q <= 1'b0;
    else if (en_o) out_valid_q <= valid2_q & last2_q;
  end
  always_ff @(posedge clk_i) begin
    if (en_o && valid2_q) begin
      acc_q <= acc_d;
      if (last2_q) out_q <= acc_d;
    end
  end

  assign out_tvalid = out_valid_q;
  for (genvar p = 0; p < Pe; p++) begin : gen_out_lane
    assign out_tdata[p*AccW +: AccW] = out_q[p];
  end

  // ---- stream protocol check of the stream this module drives (simulation only) ---------------------
  bhpe_stream_assert #(.DataW(Pe*AccW)) u_out_assert (
    .clk_i, .rst_ni, .tdata_i(out_tdata), .tvalid_i(out_tvalid), .tready_i(out_tready)
  );
endmodule
