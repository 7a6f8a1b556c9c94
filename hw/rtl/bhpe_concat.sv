`ifndef BHPE_PKG_SV
`include "bhpe_pkg.sv"
`endif

// Channel concatenation of two pixel streams: for every pixel, the C1/Lanes beats of `a` then the
// C2/Lanes beats of `b` go to `out`. Combinational multiplexer steered by a beat counter (no latency,
// one beat a cycle). Frames are unbounded sequences of pixels; no frame size is needed.
module bhpe_concat #(
  parameter int unsigned ElemW = 8,
  parameter int unsigned Lanes = 1,
  parameter int unsigned C1    = 1,
  parameter int unsigned C2    = 1
) (
  input  logic                   clk_i,
  input  logic                   rst_ni,
  input  logic [Lanes*ElemW-1:0] a_tdata,
  input  logic                   a_tvalid,
  output logic                   a_tready,
  input  logic [Lanes*ElemW-1:0] b_tdata,
  input  logic                   b_tvalid,
  output logic                   b_tready,
  output logic [Lanes*ElemW-1:0] out_tdata,
  output logic                   out_tvalid,
  input  logic                   out_tready
);
  localparam int unsigned NumA = C1 / Lanes;
  localparam int unsigned NumB = C2 / Lanes;
  localparam int unsigned Num  = NumA + NumB;
  localparam int unsigned CntW = bhpe_pkg::clog2_min1(Num);

  if (C1 % Lanes != 0 || C2 % Lanes != 0 || C1 == 0 || C2 == 0) begin : gen_bad_params
    $error("bhpe_concat: Lanes must divide C1 and C2 (both > 0)");
  end

  logic [CntW-1:0] cnt_q, cnt_d;
  logic            sel_a, fire;

  assign sel_a      = (cnt_q < CntW'(NumA));
  assign out_tdata  = sel_a ? a_tdata : b_tdata;
  assign out_tvalid = sel_a ? a_tvalid : b_tvalid;
  assign a_tready   = sel_a & out_tready;
  assign b_tready   = ~sel_a & out_tready;
  assign fire       = out_tvalid & out_tready;

  always_comb begin
    cnt_d = cnt_q;
    if (fire) cnt_d = (cnt_q == CntW'(Num - 1)) ? '0 : cnt_q + CntW'(1);
  end

  always_ff @(posedge clk_i) begin
    if (!rst_ni) cnt_q <= '0;
    else         cnt_q <= cnt_d;
  end

  // ---- stream protocol check of the stream this module drives (simulation only) ---------------------
  bhpe_stream_assert #(.DataW(Lanes*ElemW)) u_out_assert (
    .clk_i, .rst_ni, .tdata_i(out_tdata), .tvalid_i(out_tvalid), .tready_i(out_tready)
  );
endmodule
