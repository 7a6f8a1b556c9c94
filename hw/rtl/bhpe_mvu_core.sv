`ifndef BHPE_PKG_SV
`include "bhpe_pkg.sv"
`endif

// Compute stages of the matrix-vector units (bhpe_xnor_mvu, bhpe_fxp_mvu, bhpe_mvu_wstream): what follows
// the operand fetch (a ROM or a weight stream) is the same in all of them.
//
// Input: one registered fetch step a cycle (operand act_i, mask_i, weight word wgt_i, first_i / last_i
// synapse-fold flags, valid_i). Stage 2 forms, per PE, the dot product of one synapse fold and registers
// it; stage 3 accumulates over the SF synapse folds and hands the Pe accumulators to the output register on
// the last one. The pipeline advances when en_o is high (the 2-entry output FIFO has room) and holds
// every register otherwise, so a stall of any length loses nothing.
//
// Stage 2 can be cut for the clock (Extra = bhpe_pkg::mvu_extra_stages(Binary, Simd, MulReg, TreeLevels)
// more registers between the fetch and the dot-product register, each one cycle of latency; the folded
// rate stays one step a cycle):
//   MulReg = 1     (fixed point) a register after the Simd multipliers (the MULT18X18D / DSP48 output);
//   MulReg = 2     (fixed point) that and a register before them (their operands, after the mask);
//   MulLut = 1     (fixed point) the multipliers in logic (bhpe_mul's adder tree of partial products), not in
//                  DSP blocks (the ECP5 builds: compile.folding.multipliers_for_device);
//   TreeLevels = L a register every L levels of the adder tree (fixed point) or of the popcount tree
//                  (binary), bhpe_pipe_adder_tree; 0 = a combinational tree.
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
  parameter int unsigned AccW   = 8,
  parameter int unsigned MulReg     = 0,
  parameter bit          MulLut     = 1'b0,
  parameter int unsigned TreeLevels = 0
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

  // ---- stage 2: per-PE dot product of one synapse fold (registered) ---------------------------------
  localparam int unsigned Extra = bhpe_pkg::mvu_extra_stages(Binary, Simd, MulReg, TreeLevels);
  if (MulReg > 2) begin : gen_bad_mulreg
    $error("bhpe_mvu_core: MulReg is 0, 1 or 2 (registers around the multipliers)");
  end
  logic            valid2_q, first2_q, last2_q;
  logic            valid_x, first_x, last_x;  // the step whose dot product reaches the stage-2 register
  logic [AccW-1:0] term [Pe];  // the registered dot product, as stage 3 adds it

  // the step's flags travel beside the Extra registers of the dot product
  if (Extra > 0) begin : gen_flags_pipe
    logic [Extra-1:0] v_q, f_q, l_q;
    always_ff @(posedge clk_i) begin
      if (!rst_ni) v_q <= '0;
      else if (en_o) v_q <= Extra'({v_q, valid_i});
    end
    always_ff @(posedge clk_i) begin
      if (en_o) begin
        f_q <= Extra'({f_q, first_i});
        l_q <= Extra'({l_q, last_i});
      end
    end
    assign valid_x = v_q[Extra-1];
    assign first_x = f_q[Extra-1];
    assign last_x  = l_q[Extra-1];
  end else begin : gen_flags_direct
    assign valid_x = valid_i;
    assign first_x = first_i;
    assign last_x  = last_i;
  end

  if (Binary) begin : gen_xnor
    if (InW != 1 || WW != 1) begin : gen_bad_binary
      $error("bhpe_mvu_core: Binary needs InW = WW = 1");
    end
    localparam int unsigned CntW = bhpe_pkg::count_width(Simd);
    logic [CntW-1:0] pc [Pe];
    logic [CntW-1:0] pc_q [Pe];
    logic [CntW-1:0] pcm, pcm_q;
    if (TreeLevels == 0) begin : gen_pc_comb
      for (genvar p = 0; p < Pe; p++) begin : gen_pe_popcount
        logic [Simd-1:0] agree;
        assign agree = ~(act_i ^ wgt_i[p*Simd +: Simd]) & mask_i;
        bhpe_popcount #(.Width(Simd)) u_pc (.bits_i(agree), .count_o(pc[p]));
      end
      bhpe_popcount #(.Width(Simd)) u_pcm (.bits_i(mask_i), .count_o(pcm));
    end else begin : gen_pc_pipe
      // the popcounts as CntW-bit adder trees of single bits, registered every TreeLevels levels
      for (genvar p = 0; p < Pe; p++) begin : gen_pe_popcount
        logic [Simd-1:0]      agree;
        logic [Simd*CntW-1:0] bits;
        assign agree = ~(act_i ^ wgt_i[p*Simd +: Simd]) & mask_i;
        for (genvar b = 0; b < Simd; b++) begin : gen_bit
          assign bits[b*CntW +: CntW] = CntW'(agree[b]);
        end
        bhpe_pipe_adder_tree #(.Count(Simd), .Width(CntW), .LevelsPerStage(TreeLevels)) u_pc (
          .clk_i, .en_i(en_o), .terms_i(bits), .sum_o(pc[p])
        );
      end
      logic [Simd*CntW-1:0] mbits;
      for (genvar b = 0; b < Simd; b++) begin : gen_mbit
        assign mbits[b*CntW +: CntW] = CntW'(mask_i[b]);
      end
      bhpe_pipe_adder_tree #(.Count(Simd), .Width(CntW), .LevelsPerStage(TreeLevels)) u_pcm (
        .clk_i, .en_i(en_o), .terms_i(mbits), .sum_o(pcm)
      );
    end
    for (genvar p = 0; p < Pe; p++) begin : gen_pe_term
      assign term[p] = (AccW'(pc_q[p]) << 1) - AccW'(pcm_q);
    end
    always_ff @(posedge clk_i) begin
      if (en_o && valid_x) begin
        pc_q  <= pc;
        pcm_q <= pcm;
      end
    end
    logic [32:0] unused_mul;  // the binary products are XNOR gates, not multipliers
    assign unused_mul = {MulLut, MulReg};
  end else begin : gen_fxp
    logic signed [AccW-1:0] dot [Pe];
    logic signed [AccW-1:0] dot_q [Pe];
    for (genvar p = 0; p < Pe; p++) begin : gen_pe_dot
      logic [Simd*AccW-1:0] terms;
      for (genvar s = 0; s < Simd; s++) begin : gen_simd_mul
        logic signed [InW-1:0]    a;
        logic signed [WW-1:0]     w;
        logic signed [InW+WW-1:0] prod;  // InW x WW multiplier (one DSP for 8x8 .. 18x25)
        logic signed [InW-1:0]    a_m;
        logic signed [WW-1:0]     w_m;
        assign a = mask_i[s] ? act_i[s*InW +: InW] : '0;
        assign w = wgt_i[(p*Simd + s)*WW +: WW];
        if (MulReg >= 2) begin : gen_mul_in_reg
          // the multiplier's input registers, one pair per multiplier (not shared across the PEs), so
          // the placer can put them beside the MULT18X18D / DSP48 however far that sits from the fetch
          logic signed [InW-1:0] a_q;
          logic signed [WW-1:0]  w_q;
          always_ff @(posedge clk_i) begin
            if (en_o) begin
              a_q <= a;
              w_q <= w;
            end
          end
          assign a_m = a_q;
          assign w_m = w_q;
        end else begin : gen_mul_in_comb
          assign a_m = a;
          assign w_m = w;
        end
        bhpe_mul #(.AW(InW), .BW(WW), .Lut(MulLut)) u_mul (.clk_i, .a_i(a_m), .b_i(w_m), .p_o(prod));
        if (MulReg >= 1) begin : gen_mul_reg  // the multiplier's output register
          logic signed [InW+WW-1:0] prod_q;
          always_ff @(posedge clk_i) begin
            if (en_o) prod_q <= prod;
          end
          assign terms[s*AccW +: AccW] = AccW'(prod_q);
        end else begin : gen_mul_comb
          assign terms[s*AccW +: AccW] = AccW'(prod);
        end
      end
      bhpe_pipe_adder_tree #(.Count(Simd), .Width(AccW), .LevelsPerStage(TreeLevels)) u_sum (
        .clk_i, .en_i(en_o), .terms_i(terms), .sum_o(dot[p])
      );
      assign term[p] = dot_q[p];
    end
    always_ff @(posedge clk_i) begin
      if (en_o && valid_x) dot_q <= dot;
    end
  end

  always_ff @(posedge clk_i) begin
    if (!rst_ni) valid2_q <= 1'b0;
    else if (en_o) valid2_q <= valid_x;
  end
  always_ff @(posedge clk_i) begin
    if (en_o && valid_x) begin
      first2_q <= first_x;
      last2_q  <= last_x;
    end
  end

  // ---- stage 3: accumulate, push a beat into the output FIFO on the last synapse fold ---------------
  // The output is a 2-entry FIFO (bhpe_fifo): the pipeline advances while it has room (en_o = its
  // in_tready, a register compare), so out_tready reaches the FIFO's pointers only, never the pipeline's
  // enables; with a ready consumer it holds at most one beat and the rate and latency are those of a
  // single output register.
  logic [AccW-1:0]    acc_q [Pe];
  logic [AccW-1:0]    acc_d [Pe];
  logic [Pe*AccW-1:0] acc_flat;
  logic               out_push;

  always_comb begin
    for (int p = 0; p < Pe; p++) begin
      acc_d[p] = (first2_q ? '0 : acc_q[p]) + term[p];
    end
  end
  for (genvar p = 0; p < Pe; p++) begin : gen_out_lane
    assign acc_flat[p*AccW +: AccW] = acc_d[p];
  end

  always_ff @(posedge clk_i) begin
    if (en_o && valid2_q) acc_q <= acc_d;
  end

  assign out_push = valid2_q & last2_q;
  bhpe_fifo #(.Width(Pe * AccW), .Depth(2)) u_out_fifo (
    .clk_i, .rst_ni,
    .in_tdata(acc_flat), .in_tvalid(out_push), .in_tready(en_o),
    .out_tdata, .out_tvalid, .out_tready
  );

  // ---- stream protocol check of the stream this module drives (simulation only) ---------------------
  bhpe_stream_assert #(.DataW(Pe*AccW)) u_out_assert (
    .clk_i, .rst_ni, .tdata_i(out_tdata), .tvalid_i(out_tvalid), .tready_i(out_tready)
  );
endmodule
