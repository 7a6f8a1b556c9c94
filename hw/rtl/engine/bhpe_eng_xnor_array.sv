`ifndef BHPE_ENG_PKG_SV
`include "engine/bhpe_eng_pkg.sv"
`endif
`ifndef BHPE_ENG_XNOR_ARRAY_SV
`define BHPE_ENG_XNOR_ARRAY_SV

// The engine's XNOR-popcount array: Pe rows, one 64-bit input word against Pe 64-bit weight words a cycle
// (docs/engine.md, "Semantics", XNOR conv). Per row p and accepted step:
//   acc[p] += 2 * popcount(~(x ^ w[p]) & mask) - popcount(mask)
// where mask holds the valid channels of the word (zero for a padding tap). first_i starts a new sum.
//
// Pipeline (each stage registered, no stall: the caller issues a step only when it can take the result):
//   cycle 1 (inputs)  agree = ~(x ^ w[p]) & mask of the Pe rows (the buffers' read data, one LUT) -> registered
//   cycle 2           popcounts of the rows and of the mask                                   -> registered
//   cycle 3           acc = (first ? 0 : acc) + 2 * pc - pcm                                   -> acc_o
// done_o is high for one cycle, the cycle after the step flagged last_i was accumulated (acc_o holds the
// group's sums from then until the next first step is accumulated): Latency = 3.
module bhpe_eng_xnor_array #(
  parameter int unsigned Pe = 16
) (
  input  logic                                  clk_i,
  input  logic                                  rst_ni,
  input  logic                                  valid_i,
  input  logic                                  first_i,
  input  logic                                  last_i,
  input  logic [63:0]                           x_i,
  input  logic [63:0]                           mask_i,
  input  logic [Pe*64-1:0]                      w_i,
  output logic [Pe*bhpe_eng_pkg::AccW-1:0]      acc_o,
  output logic                                  done_o
);
  localparam int unsigned AccW = bhpe_eng_pkg::AccW;
  localparam int unsigned CntW = 7;  // 0..64

  logic [2:0] valid_q, first_q, last_q;  // [0]: stage 1 register, [1]: stage 2 register, [2]: done

  logic [63:0]     agree_q [Pe];
  logic [63:0]     mask_q;
  logic [CntW-1:0] pc [Pe];
  logic [CntW-1:0] pc_q [Pe];
  logic [CntW-1:0] pcm, pcm_q;
  logic [AccW-1:0] acc_q [Pe];

  for (genvar p = 0; p < Pe; p++) begin : gen_row
    always_ff @(posedge clk_i) begin
      if (valid_i) agree_q[p] <= ~(x_i ^ w_i[p*64 +: 64]) & mask_i;
    end
    bhpe_popcount #(.Width(64)) u_pc (.bits_i(agree_q[p]), .count_o(pc[p]));

    logic [AccW-1:0] base;
    assign base = first_q[1] ? '0 : acc_q[p];
    always_ff @(posedge clk_i) begin
      if (valid_q[0]) pc_q[p] <= pc[p];
      if (valid_q[1]) acc_q[p] <= base + (AccW'(pc_q[p]) << 1) - AccW'(pcm_q);
    end
    assign acc_o[p*AccW +: AccW] = acc_q[p];
  end
  bhpe_popcount #(.Width(64)) u_pcm (.bits_i(mask_q), .count_o(pcm));

  always_ff @(posedge clk_i) begin
    if (valid_i) mask_q <= mask_i;
    if (valid_q[0]) pcm_q <= pcm;
  end

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      valid_q <= '0;
      first_q <= '0;
      last_q  <= '0;
    end else begin
      valid_q <= {valid_q[1] & last_q[1], valid_q[0], valid_i};
      first_q <= {1'b0, first_q[0], first_i};
      last_q  <= {1'b0, last_q[0], last_i};
    end
  end
  assign done_o = valid_q[2];

  logic unused_q;
  assign unused_q = ^{first_q[2], last_q[2]};
endmodule
`endif  // BHPE_ENG_XNOR_ARRAY_SV
