// Pooling layer: bhpe_swg (windows + padding mask) followed by the bhpe_pool reducer.
// Input: H x W x C frames, Lanes elements a beat; output: OH x OW x C, Lanes results (OutW bits) a beat.
// Mode 0 = max over the valid taps, Mode 1 = exact sum over the valid taps (see bhpe_pool).
module bhpe_swg_pool #(
  parameter int unsigned ElemW  = 8,
  parameter int unsigned OutW   = 8,
  parameter int unsigned Lanes  = 1,
  parameter int unsigned H      = 4,
  parameter int unsigned W      = 4,
  parameter int unsigned C      = 1,
  parameter int unsigned K      = 2,
  parameter int unsigned S      = 2,
  parameter int unsigned Pad    = 0,
  parameter int unsigned Mode   = 0,
  parameter bit          Signed = 1'b1
) (
  input  logic                   clk_i,
  input  logic                   rst_ni,
  input  logic [Lanes*ElemW-1:0] in_tdata,
  input  logic                   in_tvalid,
  output logic                   in_tready,
  output logic [Lanes*OutW-1:0]  out_tdata,
  output logic                   out_tvalid,
  input  logic                   out_tready
);
  logic [Lanes*ElemW-1:0] win_tdata;
  logic [Lanes-1:0]       win_tmask;
  logic                   win_tvalid, win_tready;

  bhpe_swg #(
    .ElemW(ElemW), .Lanes(Lanes), .H(H), .W(W), .C(C), .K(K), .S(S), .Pad(Pad)
  ) u_swg (
    .clk_i, .rst_ni,
    .in_tdata, .in_tvalid, .in_tready,
    .out_tdata(win_tdata), .out_tmask(win_tmask), .out_tvalid(win_tvalid), .out_tready(win_tready)
  );

  bhpe_pool #(
    .ElemW(ElemW), .OutW(OutW), .Lanes(Lanes), .C(C), .K(K), .Mode(Mode), .Signed(Signed)
  ) u_pool (
    .clk_i, .rst_ni,
    .in_tdata(win_tdata), .in_tmask(win_tmask), .in_tvalid(win_tvalid), .in_tready(win_tready),
    .out_tdata, .out_tvalid, .out_tready
  );
endmodule
