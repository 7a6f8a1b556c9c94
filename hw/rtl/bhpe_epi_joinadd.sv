// Join-add epilogue: y = sat_OutW((a <<< ShiftA) + (b <<< ShiftB)) per element, the left shifts aligning
// the fixed-point formats (residual add eq. 7, Fusion Down sum eq. 10, block output eq. 11 of
// docs/numerics.md). Two input streams a, b (Lanes signed elements a beat, same raster order), one output.
// A beat is taken from both inputs together, never from one alone: a_tready = b_tready = (the output
// stage can accept) & both valid. One registered stage: latency 1 cycle, one beat a cycle.
module bhpe_epi_joinadd #(
  parameter int unsigned Lanes  = 1,
  parameter int unsigned InAW   = 16,
  parameter int unsigned InBW   = 16,
  parameter int unsigned OutW   = 16,
  parameter int unsigned ShiftA = 0,
  parameter int unsigned ShiftB = 0
) (
  input  logic                  clk_i,
  input  logic                  rst_ni,
  input  logic [Lanes*InAW-1:0] a_tdata,
  input  logic                  a_tvalid,
  output logic                  a_tready,
  input  logic [Lanes*InBW-1:0] b_tdata,
  input  logic                  b_tvalid,
  output logic                  b_tready,
  output logic [Lanes*OutW-1:0] out_tdata,
  output logic                  out_tvalid,
  input  logic                  out_tready
);
  localparam int unsigned WA   = InAW + ShiftA;
  localparam int unsigned WB   = InBW + ShiftB;
  localparam int unsigned SumW = ((WA > WB) ? WA : WB) + 1;

  logic [Lanes*OutW-1:0] res;
  logic                  both_valid, stage_ready;

  assign both_valid = a_tvalid & b_tvalid;
  assign a_tready   = stage_ready & b_tvalid;
  assign b_tready   = stage_ready & a_tvalid;

  for (genvar l = 0; l < Lanes; l++) begin : gen_lane
    logic signed [InAW-1:0] a;
    logic signed [InBW-1:0] b;
    logic signed [SumW-1:0] sum;
    assign a   = a_tdata[l*InAW +: InAW];
    assign b   = b_tdata[l*InBW +: InBW];
    assign sum = (SumW'(a) <<< ShiftA) + (SumW'(b) <<< ShiftB);
    bhpe_epi_sat #(.InW(SumW), .OutW(OutW)) u_sat (.in_i(sum), .out_o(res[l*OutW +: OutW]));
  end

  bhpe_epi_reg #(.Width(Lanes*OutW)) u_reg (
    .clk_i, .rst_ni,
    .in_tdata  (res),
    .in_tvalid (both_valid),
    .in_tready (stage_ready),
    .out_tdata,
    .out_tvalid,
    .out_tready
  );
endmodule
