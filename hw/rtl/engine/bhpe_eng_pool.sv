`ifndef BHPE_PKG_SV
`include "bhpe_pkg.sv"
`endif
`ifndef BHPE_ENG_PKG_SV
`include "engine/bhpe_eng_pkg.sv"
`endif
`ifndef BHPE_ENG_POOL_SV
`define BHPE_ENG_POOL_SV

// The engine's pool reducer: Pe channels (one group) of max or sum over the valid taps (docs/engine.md,
// "Semantics", pool max / sum). A step is one 64-bit input word of the group: word j_i holds the channels
// [j * Epw, (j + 1) * Epw) of the group, Epw = 64 / ew elements of ew = 2^lg_ew_i bits (8, 16 or 32), sign-
// or zero-extended (signed_i). Bipolar elements (lg_ew_i = 0, ew = 1: the integers 0 / 1, max = OR): the group's
// Pe bits start at bit off_i of the word (Pe < 64), or word j holds the group's channels [64 j, 64 j + 64).
// first_i (the group's first step) restarts every lane (max: -2^(ValW-1), sum: 0) before the step is applied;
// tap_ok_i = 0 (a padding tap) leaves the lanes as they are.
//
// Pipeline (registered, no stall): cycle 1 extract and extend the elements, cycle 2 a register, cycle 3
// update the lanes of word j; done_o the cycle after the last step was applied (Latency = 3, as the XNOR
// array).
module bhpe_eng_pool #(
  parameter int unsigned Pe = 16,
  // a group is at most Pe * 32 / 64 words of a pixel
  localparam int unsigned JW = bhpe_pkg::clog2_min1(Pe / 2)
) (
  input  logic                                  clk_i,
  input  logic                                  rst_ni,
  input  logic                                  valid_i,
  input  logic                                  first_i,
  input  logic                                  last_i,
  input  logic                                  is_max_i,
  input  logic                                  signed_i,
  input  logic [2:0]                            lg_ew_i,
  input  logic                                  tap_ok_i,
  input  logic [JW-1:0]                         j_i,
  input  logic [5:0]                            off_i,
  input  logic [63:0]                           x_i,
  output logic [Pe*bhpe_eng_pkg::ValW-1:0]      acc_o,
  output logic                                  done_o
);
  localparam int unsigned ValW = bhpe_eng_pkg::ValW;

  // ---- stage 1: elements of the word, extended to ValW ----------------------------------------------
  logic [ValW-1:0] elem [8];
  always_comb begin
    for (int unsigned e = 0; e < 8; e++) begin
      elem[e] = '0;
      unique case (lg_ew_i)
        3'd4: if (e < 4) elem[e] = signed_i ? ValW'($signed(x_i[e*16 +: 16])) : ValW'(x_i[e*16 +: 16]);
        3'd5: if (e < 2) elem[e] = signed_i ? ValW'($signed(x_i[e*32 +: 32])) : ValW'(x_i[e*32 +: 32]);
        default: elem[e] = signed_i ? ValW'($signed(x_i[e*8 +: 8])) : ValW'(x_i[e*8 +: 8]);
      endcase
    end
  end

  logic [ValW-1:0] elem_q [2][8];
  logic [63:0]     bits_q [2];  // bipolar: the word from the group's first bit on
  logic [JW-1:0]   j_q [2];
  logic [1:0]      ok_q;
  logic [2:0]      valid_q, first_q, last_q;

  always_ff @(posedge clk_i) begin
    if (valid_i) begin
      elem_q[0] <= elem;
      bits_q[0] <= x_i >> off_i;
      j_q[0]    <= j_i;
      ok_q[0]   <= tap_ok_i;
    end
    if (valid_q[0]) begin
      elem_q[1] <= elem_q[0];
      bits_q[1] <= bits_q[0];
      j_q[1]    <= j_q[0];
      ok_q[1]   <= ok_q[0];
    end
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

  // ---- stage 3: lane p takes element p mod Epw of word p / Epw ---------------------------------------
  logic [ValW-1:0] acc_q [Pe];
  for (genvar p = 0; p < Pe; p++) begin : gen_lane
    logic            sel;
    logic [ValW-1:0] e, base, upd;
    always_comb begin
      unique case (lg_ew_i)
        3'd4:    begin sel = (JW'(p / 4) == j_q[1]); e = elem_q[1][p % 4]; end
        3'd5:    begin sel = (JW'(p / 2) == j_q[1]); e = elem_q[1][p % 2]; end
        3'd0:    begin
          sel = (JW'(p / 64) == j_q[1]);
          e   = signed_i ? {ValW{bits_q[1][p % 64]}} : ValW'(bits_q[1][p % 64]);
        end
        default: begin sel = (JW'(p / 8) == j_q[1]); e = elem_q[1][p % 8]; end
      endcase
      base = first_q[1] ? (is_max_i ? {1'b1, {(ValW-1){1'b0}}} : '0) : acc_q[p];
      upd  = base;
      if (sel && ok_q[1]) begin
        if (is_max_i) upd = ($signed(e) > $signed(base)) ? e : base;
        else          upd = base + e;
      end
    end
    always_ff @(posedge clk_i) begin
      if (valid_q[1]) acc_q[p] <= upd;
    end
    assign acc_o[p*ValW +: ValW] = acc_q[p];
  end

  logic unused_q;
  assign unused_q = ^{first_q[2], last_q[2]};
endmodule
`endif  // BHPE_ENG_POOL_SV
