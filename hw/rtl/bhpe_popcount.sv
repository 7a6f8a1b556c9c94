`ifndef BHPE_PKG_SV
`include "bhpe_pkg.sv"
`endif

// Population count of a Width-bit vector: a combinational binary adder tree (the caller registers the
// result). The tree splits the vector in halves recursively; leaves are single bits.
module bhpe_popcount #(
  parameter int unsigned Width = 8,
  localparam int unsigned CntW = bhpe_pkg::count_width(Width)
) (
  input  logic [Width-1:0] bits_i,
  output logic [CntW-1:0]  count_o
);
  if (Width == 1) begin : gen_leaf
    assign count_o = bits_i;
  end else begin : gen_tree
    localparam int unsigned LoW   = Width / 2;
    localparam int unsigned HiW   = Width - LoW;
    localparam int unsigned LoCnt = bhpe_pkg::count_width(LoW);
    localparam int unsigned HiCnt = bhpe_pkg::count_width(HiW);
    logic [LoCnt-1:0] lo_count;
    logic [HiCnt-1:0] hi_count;
    bhpe_popcount #(.Width(LoW)) u_lo (.bits_i(bits_i[LoW-1:0]),     .count_o(lo_count));
    bhpe_popcount #(.Width(HiW)) u_hi (.bits_i(bits_i[Width-1:LoW]), .count_o(hi_count));
    assign count_o = CntW'(lo_count) + CntW'(hi_count);
  end
endmodule
