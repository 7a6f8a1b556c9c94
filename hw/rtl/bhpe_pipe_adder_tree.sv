`ifndef BHPE_PKG_SV
`include "bhpe_pkg.sv"
`endif

// Sum of Count two's-complement terms of Width bits: a balanced binary adder tree with a register every
// LevelsPerStage adder levels (0: none, a combinational tree like bhpe_adder_tree). The sum wraps modulo
// 2^Width: the caller sizes Width for the exact result.
//
// The tree is padded with zero leaves to a power of two (P = 2^D leaves, D = clog2(Count) levels), so every
// leaf-to-root path crosses the same registers: node k (1 = the root, 2k and 2k+1 its children, leaves at
// P..2P-1) sits at height D - floor(log2(k)) above the leaves and is registered when its height is a multiple
// of LevelsPerStage, the root excepted (the caller registers the sum). Registers load when en_i is high
// (the caller's pipeline enable) and hold otherwise; bhpe_pkg::tree_stages(Count, LevelsPerStage) registers
// lie on every path: sum_o follows terms_i by that many enabled cycles.
module bhpe_pipe_adder_tree #(
  parameter int unsigned  Count          = 2,
  parameter int unsigned  Width          = 8,
  parameter int unsigned  LevelsPerStage = 0
) (
  input  logic                   clk_i,
  input  logic                   en_i,
  input  logic [Count*Width-1:0] terms_i,
  output logic [Width-1:0]       sum_o
);
  localparam int unsigned D = bhpe_pkg::clog2_min1(Count);
  localparam int unsigned P = 1 << D;

  // node k holds bits [k*Width +: Width]; node 0 is not used
  logic [2*P*Width-1:0] node;
  assign node[Width-1:0] = '0;

  for (genvar k = P; k < 2 * P; k++) begin : gen_leaf
    if (k - P < Count) begin : gen_term
      assign node[k*Width +: Width] = terms_i[(k-P)*Width +: Width];
    end else begin : gen_pad
      assign node[k*Width +: Width] = '0;
    end
  end

  for (genvar k = 1; k < P; k++) begin : gen_node
    localparam int unsigned Height = D - $clog2(k + 1) + 1;  // floor(log2(k)) = clog2(k + 1) - 1
    logic [Width-1:0] sum;
    assign sum = node[2*k*Width +: Width] + node[(2*k+1)*Width +: Width];
    if (LevelsPerStage != 0 && k != 1 && Height % LevelsPerStage == 0) begin : gen_reg
      logic [Width-1:0] sum_q;
      always_ff @(posedge clk_i) begin
        if (en_i) sum_q <= sum;
      end
      assign node[k*Width +: Width] = sum_q;
    end else begin : gen_comb
      assign node[k*Width +: Width] = sum;
    end
  end

  if (Count == 1) begin : gen_single
    assign sum_o = terms_i;
    logic unused_tree;
    assign unused_tree = ^{node, clk_i, en_i};
  end else begin : gen_root
    assign sum_o = node[Width +: Width];
    logic unused_tree;  // node 0, and the clock and enable when no node is registered
    assign unused_tree = ^{node[Width-1:0], clk_i, en_i};
  end
endmodule
