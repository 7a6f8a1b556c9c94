// Requantization epilogue: y = sat_OutW(x >>> Shift) per element (arithmetic shift right = floor; a
// negative Shift is an exact left shift by -Shift), then y = max(y, 0) when Relu = 1. Used for
// Hardtanh + requantization to the A format and to align fixed-point formats (docs/numerics.md).
// Lanes signed InW-bit elements a beat in, Lanes signed OutW-bit elements a beat out (lane 0 in the
// LSBs). One registered stage: latency 1 cycle, one beat a cycle.
module bhpe_epi_requant #(
  parameter int unsigned Lanes = 1,
  parameter int unsigned InW   = 16,
  parameter int unsigned OutW  = 8,
  parameter int          Shift = 0,
  parameter bit          Relu  = 1'b0
) (
  input  logic                  clk_i,
  input  logic                  rst_ni,
  input  logic [Lanes*InW-1:0]  in_tdata,
  input  logic                  in_tvalid,
  output logic                  in_tready,
  output logic [Lanes*OutW-1:0] out_tdata,
  output logic                  out_tvalid,
  input  logic                  out_tready
);
  localparam int unsigned LShift = (Shift < 0) ? 32'(-Shift) : 32'd0;
  localparam int unsigned RShift = (Shift > 0) ? 32'(Shift) : 32'd0;
  localparam int unsigned WideW  = InW + LShift;

  logic [Lanes*OutW-1:0] res;

  for (genvar l = 0; l < Lanes; l++) begin : gen_lane
    logic signed [InW-1:0]   x;
    logic signed [WideW-1:0] wide;
    logic signed [OutW-1:0]  y_sat;
    assign x    = in_tdata[l*InW +: InW];
    assign wide = (WideW'(x) <<< LShift) >>> RShift;
    bhpe_epi_sat #(.InW(WideW), .OutW(OutW)) u_sat (.in_i(wide), .out_o(y_sat));
    if (Relu) begin : gen_relu
      assign res[l*OutW +: OutW] = y_sat[OutW-1] ? '0 : y_sat;
    end else begin : gen_no_relu
      assign res[l*OutW +: OutW] = y_sat;
    end
  end

  bhpe_epi_reg #(.Width(Lanes*OutW)) u_reg (
    .clk_i, .rst_ni,
    .in_tdata (res),
    .in_tvalid,
    .in_tready,
    .out_tdata,
    .out_tvalid,
    .out_tready
  );
endmodule
