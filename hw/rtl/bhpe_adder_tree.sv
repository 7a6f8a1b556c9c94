// Sum of Count two's-complement terms of Width bits: a combinational balanced binary adder tree
// (depth clog2(Count)). The sum wraps modulo 2^Width: the caller sizes Width for the exact result.
module bhpe_adder_tree #(
  parameter int unsigned Count = 2,
  parameter int unsigned Width = 8
) (
  input  logic [Count*Width-1:0] terms_i,
  output logic [Width-1:0]       sum_o
);
  if (Count == 1) begin : gen_leaf
    assign sum_o = terms_i;
  end else begin : gen_tree
    localparam int unsigned LoN = Count / 2;
    localparam int unsigned HiN = Count - LoN;
    logic [Width-1:0] lo_sum, hi_sum;
    bhpe_adder_tree #(.Count(LoN), .Width(Width)) u_lo (
      .terms_i(terms_i[LoN*Width-1:0]), .sum_o(lo_sum)
    );
    bhpe_adder_tree #(.Count(HiN), .Width(Width)) u_hi (
      .terms_i(terms_i[Count*Width-1:LoN*Width]), .sum_o(hi_sum)
    );
    assign sum_o = lo_sum + hi_sum;
  end
endmodule
