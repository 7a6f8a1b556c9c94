`ifndef BHPE_PKG_SV
`include "bhpe_pkg.sv"
`endif

// Channel split of one pixel stream: for every pixel, the first C1 channels (C1/Lanes beats) go to
// `a`, the next C2 channels (C2/Lanes beats) to `b`. Combinational demultiplexer steered by a beat
// counter (no latency, one beat a cycle). Wider splits are built as trees of this module.
module bhpe_split #(
  parameter int unsigned ElemW = 8,
  parameter int unsigned Lanes = 1,
  parameter int unsigned C1    = 1,
  parameter int unsigned C2    = 1
) (
  input  logic                   clk_i,
  input  logic                   rst_ni,
  input  logic [Lanes*ElemW-1:0] in_tdata,
  input  logic                   in_tvalid,
  output logic                   in_tready,
  output logic [Lanes*ElemW-1:0] a_tdata,
  output logic                   a_tvalid,
  input  logic                   a_tready,
  output logic [Lanes*ElemW-1:0] b_tdata,
  output logic                   b_tvalid,
  input  logic                   b_tready
);
  localparam int unsigned NumA = C1 / Lanes;
  localparam int unsigned NumB = C2 / Lanes;
  localparam int unsigned Num  = NumA + NumB;
  localparam int unsigned CntW = bhpe_pkg::clog2_min1(Num);

  if (C1 % Lanes != 0 || C2 % Lanes != 0 || C1 == 0 || C2 == 0) begin : gen_bad_params
    $error("bhpe_split: Lanes must divide C1 and C2 (both > 0)");
  end

  logic [CntW-1:0] cnt_q, cnt_d;
  logic            sel_a, fire;

  assign sel_a     = (cnt_q < CntW'(NumA));
  assign a_tdata   = in_tdata;
  assign b_tdata   = in_tdata;
  assign a_tvalid  = in_tvalid & sel_a;
  assign b_tvalid  = in_tvalid & ~sel_a;
  assign in_tready = sel_a ? a_tready : b_tready;
  assign fire      = in_tvalid & in_tready;

  always_comb begin
    cnt_d = cnt_q;
    if (fire) cnt_d = (cnt_q == CntW'(Num - 1)) ? '0 : cnt_q + CntW'(1);
  end

  always_ff @(posedge clk_i) begin
    if (!rst_ni) cnt_q <= '0;
    else         cnt_q <= cnt_d;
  end

  // ---- stream protocol check of the streams this module drives (simulation only) --------------------
  bhpe_stream_assert #(.DataW(Lanes*ElemW)) u_a_assert (
    .clk_i, .rst_ni, .tdata_i(a_tdata), .tvalid_i(a_tvalid), .tready_i(a_tready)
  );
  bhpe_stream_assert #(.DataW(Lanes*ElemW)) u_b_assert (
    .clk_i, .rst_ni, .tdata_i(b_tdata), .tvalid_i(b_tvalid), .tready_i(b_tready)
  );
endmodule
