`ifndef BHPE_PKG_SV
`include "bhpe_pkg.sv"
`endif

// Window reducer for pooling: consumes the bhpe_swg window stream (K*K taps a window, in (ky, kx, c)
// order, Lanes elements a beat, with a per-lane valid mask) and reduces every window per channel.
//   Mode 0: maximum over the valid taps (a window without valid taps gives the element type's minimum).
//   Mode 1: exact sum over the valid taps (average pooling as sum-and-shift; the shift is applied later).
// Elements are ElemW bits, two's complement when Signed = 1, unsigned otherwise (binary activations
// {0, 1} standing for {-1, +1}: their maximum is the OR). Results are OutW bits, extended accordingly.
// Output: one pixel's C channels a window, Lanes a beat (C/Lanes beats), from a registered output stage.
// Partial results of the C/Lanes channel groups live in a small C/Lanes-word memory.
// One input beat a cycle; a window's last tap beats produce the output beats one cycle later.
module bhpe_pool #(
  parameter int unsigned ElemW  = 8,
  parameter int unsigned OutW   = 10,
  parameter int unsigned Lanes  = 1,
  parameter int unsigned C      = 1,
  parameter int unsigned K      = 2,
  parameter int unsigned Mode   = 0,
  parameter bit          Signed = 1'b1
) (
  input  logic                   clk_i,
  input  logic                   rst_ni,
  input  logic [Lanes*ElemW-1:0] in_tdata,
  input  logic [Lanes-1:0]       in_tmask,
  input  logic                   in_tvalid,
  output logic                   in_tready,
  output logic [Lanes*OutW-1:0]  out_tdata,
  output logic                   out_tvalid,
  input  logic                   out_tready
);
  localparam int unsigned CB   = C / Lanes;
  localparam int unsigned Taps = K * K;
  localparam int unsigned CbW  = bhpe_pkg::clog2_min1(CB);
  localparam int unsigned TapW = bhpe_pkg::clog2_min1(Taps);
  localparam int unsigned CmpW = OutW + 1;  // compare/extend with one spare bit

  if (C % Lanes != 0) begin : gen_bad_lanes
    $error("bhpe_pool: Lanes must divide C");
  end
  if (OutW < ElemW) begin : gen_bad_outw
    $error("bhpe_pool: OutW must be >= ElemW");
  end
  if (Mode > 1) begin : gen_bad_mode
    $error("bhpe_pool: Mode must be 0 (max) or 1 (sum)");
  end

  function automatic logic [CmpW-1:0] ext_elem(input logic [ElemW-1:0] x);
    return Signed ? CmpW'($signed(x)) : CmpW'(x);
  endfunction
  function automatic logic [CmpW-1:0] ext_out(input logic [OutW-1:0] x);
    return Signed ? CmpW'($signed(x)) : CmpW'(x);
  endfunction

  // neutral element of the reduction, OutW bits
  localparam logic [ElemW-1:0] ElemMin = Signed ? {1'b1, {(ElemW - 1){1'b0}}} : '0;
  localparam logic [OutW-1:0]  Neutral = (Mode == 0) ? OutW'(ext_elem(ElemMin)) : '0;

  logic [Lanes*OutW-1:0] acc_mem [CB];
  logic [Lanes*OutW-1:0] prev, next;
  logic [CbW-1:0]        cb_q, cb_d;
  logic [TapW-1:0]       tap_q, tap_d;
  logic [Lanes*OutW-1:0] out_q, out_d;
  logic                  out_valid_q, out_valid_d;
  logic                  in_fire, first_tap, last_tap;

  assign first_tap = (tap_q == '0);
  assign last_tap  = (tap_q == TapW'(Taps - 1));
  assign in_tready = ~out_valid_q | out_tready;
  assign in_fire   = in_tvalid & in_tready;
  assign prev      = first_tap ? {Lanes{Neutral}} : acc_mem[cb_q];
  assign out_tdata  = out_q;
  assign out_tvalid = out_valid_q;

  for (genvar l = 0; l < Lanes; l++) begin : gen_lane
    logic [CmpW-1:0] x, p, r;
    assign x = ext_elem(in_tdata[l*ElemW +: ElemW]);
    assign p = ext_out(prev[l*OutW +: OutW]);
    if (Mode == 0) begin : gen_max
      assign r = (in_tmask[l] && ($signed(x) > $signed(p))) ? x : p;
    end else begin : gen_sum
      assign r = in_tmask[l] ? p + x : p;
    end
    assign next[l*OutW +: OutW] = r[OutW-1:0];
    logic unused_r;
    assign unused_r = r[OutW];
  end

  always_comb begin
    cb_d        = cb_q;
    tap_d       = tap_q;
    out_d       = out_q;
    out_valid_d = out_valid_q;
    if (out_valid_q && out_tready) out_valid_d = 1'b0;
    if (in_fire) begin
      cb_d = (cb_q == CbW'(CB - 1)) ? '0 : cb_q + CbW'(1);
      if (cb_q == CbW'(CB - 1)) tap_d = last_tap ? '0 : tap_q + TapW'(1);
      if (last_tap) begin
        out_d       = next;
        out_valid_d = 1'b1;
      end
    end
  end

  always_ff @(posedge clk_i) begin
    if (in_fire && !last_tap) acc_mem[cb_q] <= next;
  end

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      cb_q        <= '0;
      tap_q       <= '0;
      out_valid_q <= 1'b0;
    end else begin
      cb_q        <= cb_d;
      tap_q       <= tap_d;
      out_valid_q <= out_valid_d;
    end
  end
  always_ff @(posedge clk_i) begin
    out_q <= out_d;
  end

  // ---- stream protocol check of the stream this module drives (simulation only) ---------------------
  bhpe_stream_assert #(.DataW(Lanes*OutW)) u_out_assert (
    .clk_i, .rst_ni, .tdata_i(out_tdata), .tvalid_i(out_tvalid), .tready_i(out_tready)
  );
endmodule
