`ifndef BHPE_PKG_SV
`include "bhpe_pkg.sv"
`endif
`ifndef BHPE_ENG_PKG_SV
`include "engine/bhpe_eng_pkg.sv"
`endif
`ifndef BHPE_ENG_MAC_ARRAY_SV
`define BHPE_ENG_MAC_ARRAY_SV

// The engine's MAC array: Pef rows of 8 signed multipliers (docs/engine.md, "Semantics", MAC conv). A step is
// one 64-bit input word: 8 elements of 8 bits (wide_i = 0) or 4 of 16 bits (wide_i = 1), sign- or zero-
// extended (signed_i), masked by emask_i (element e valid: channel in range and tap inside the input), against
// the weight lanes [u * Pef, (u + 1) * Pef) of the Pe-lane weight word (signed elements of the same width).
// Sub-pass u_i accumulates into lanes u * Pef + p; first_i starts the sub-pass's sums.
//
// Pipeline (registered, no stall): cycle 1 select the sub-pass's weight lanes and extend the elements,
// cycle 2 the products (one multiplier stage), cycle 3 the adder tree of each row, cycle 4 accumulate;
// done_o the cycle after the step flagged last_i was accumulated (Latency = 4).
module bhpe_eng_mac_array #(
  parameter int unsigned Pe  = 16,
  parameter int unsigned Pef = 4,
  localparam int unsigned UW = bhpe_pkg::clog2_min1(Pe / Pef)
) (
  input  logic                                  clk_i,
  input  logic                                  rst_ni,
  input  logic                                  valid_i,
  input  logic                                  first_i,
  input  logic                                  last_i,
  input  logic                                  wide_i,
  input  logic                                  signed_i,
  input  logic [UW-1:0]                         u_i,
  input  logic [7:0]                            emask_i,
  input  logic [63:0]                           x_i,
  input  logic [Pe*64-1:0]                      w_i,
  output logic [Pe*bhpe_eng_pkg::AccW-1:0]      acc_o,
  output logic                                  done_o
);
  localparam int unsigned AccW  = bhpe_eng_pkg::AccW;
  localparam int unsigned NumU  = Pe / Pef;
  localparam int unsigned XW    = 17;  // an element, extended: 16 bits + sign
  localparam int unsigned WW    = 16;
  localparam int unsigned ProdW = XW + WW;

  if (Pef == 0 || Pe % Pef != 0) begin : gen_bad_pef
    $error("bhpe_eng_mac_array: Pef must divide Pe");
  end

  // ---- stage 1: operands -----------------------------------------------------------------------------
  logic signed [XW-1:0] xe [8];
  logic signed [XW-1:0] xe_q [8];
  logic signed [WW-1:0] we_q [Pef][8];
  logic [3:0]           valid_q, first_q, last_q;
  logic [UW-1:0]        u_q [3];

  always_comb begin
    for (int unsigned e = 0; e < 8; e++) begin
      if (wide_i) begin
        xe[e] = (e < 4) ? (signed_i ? XW'($signed(x_i[e*16 +: 16])) : XW'(x_i[e*16 +: 16])) : '0;
      end else begin
        xe[e] = signed_i ? XW'($signed(x_i[e*8 +: 8])) : XW'(x_i[e*8 +: 8]);
      end
      if (!emask_i[e]) xe[e] = '0;
    end
  end

  for (genvar p = 0; p < Pef; p++) begin : gen_wsel
    logic [63:0] wl;
    always_comb begin
      wl = w_i[p*64 +: 64];
      for (int unsigned u = 1; u < NumU; u++) begin
        if (u_i == UW'(u)) wl = w_i[(u*Pef + p)*64 +: 64];
      end
    end
    always_ff @(posedge clk_i) begin
      if (valid_i) begin
        for (int unsigned e = 0; e < 8; e++) begin
          if (wide_i) we_q[p][e] <= (e < 4) ? wl[e*16 +: 16] : '0;
          else        we_q[p][e] <= WW'($signed(wl[e*8 +: 8]));
        end
      end
    end
  end

  always_ff @(posedge clk_i) begin
    if (valid_i) begin
      xe_q   <= xe;
      u_q[0] <= u_i;
    end
    if (valid_q[0]) u_q[1] <= u_q[0];
    if (valid_q[1]) u_q[2] <= u_q[1];
  end

  // ---- stage 2: products; stage 3: the row's sum; stage 4: accumulate ---------------------------------
  logic [AccW-1:0] dot_q [Pef];
  for (genvar p = 0; p < Pef; p++) begin : gen_row
    logic [8*AccW-1:0]       prods_q;
    logic [AccW-1:0]         dot;
    for (genvar e = 0; e < 8; e++) begin : gen_mul
      logic signed [ProdW-1:0] prod;
      logic                    unused_top;  // |product| < 2^31: the sign bit repeats bit 31
      assign prod       = xe_q[e] * we_q[p][e];
      assign unused_top = prod[ProdW-1];
      always_ff @(posedge clk_i) begin
        if (valid_q[0]) prods_q[e*AccW +: AccW] <= AccW'(prod);
      end
    end
    bhpe_adder_tree #(.Count(8), .Width(AccW)) u_sum (.terms_i(prods_q), .sum_o(dot));
    always_ff @(posedge clk_i) begin
      if (valid_q[1]) dot_q[p] <= dot;
    end
  end

  logic [AccW-1:0] acc_q [Pe];
  for (genvar l = 0; l < Pe; l++) begin : gen_acc
    always_ff @(posedge clk_i) begin
      if (valid_q[2] && u_q[2] == UW'(l / Pef)) begin
        acc_q[l] <= first_q[2] ? dot_q[l % Pef] : acc_q[l] + dot_q[l % Pef];
      end
    end
    assign acc_o[l*AccW +: AccW] = acc_q[l];
  end

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      valid_q <= '0;
      first_q <= '0;
      last_q  <= '0;
    end else begin
      valid_q <= {valid_q[2] & last_q[2], valid_q[1:0], valid_i};
      first_q <= {1'b0, first_q[1:0], first_i};
      last_q  <= {1'b0, last_q[1:0], last_i};
    end
  end
  assign done_o = valid_q[3];

  logic unused_q;
  assign unused_q = ^{first_q[3], last_q[3]};
endmodule
`endif  // BHPE_ENG_MAC_ARRAY_SV
