// Per-channel add-constant epilogue: y = sat_OutW(x + b_c) per element, b_c a signed ConstW-bit constant
// of channel c (RPReLU gamma (negated) and zeta, BatchNorm shift; docs/numerics.md).
// Lanes signed InW-bit elements a beat in raster order, C channels a pixel (Lanes divides C); the constant
// ROM (InitFile, $readmemh) holds C/Lanes words of Lanes constants, lane 0 in the LSBs.
// One registered stage: latency 1 cycle, one beat a cycle.
module bhpe_epi_addconst #(
  parameter int unsigned Lanes    = 1,
  parameter int unsigned C        = 1,
  parameter int unsigned InW      = 16,
  parameter int unsigned ConstW   = 16,
  parameter int unsigned OutW     = 16,
  parameter string       InitFile = ""
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
  localparam int unsigned Depth = C / Lanes;
  localparam int unsigned SumW  = ((InW > ConstW) ? InW : ConstW) + 1;

  if (Lanes == 0 || C % Lanes != 0) begin : gen_bad_lanes
    $error("bhpe_epi_addconst: Lanes must divide C");
  end

  logic [Lanes*ConstW-1:0] consts;
  logic [Lanes*OutW-1:0]   res;

  bhpe_epi_crom #(.Width(Lanes*ConstW), .Depth(Depth), .InitFile(InitFile)) u_rom (
    .clk_i, .rst_ni,
    .adv_i  (in_tvalid & in_tready),
    .data_o (consts)
  );

  for (genvar l = 0; l < Lanes; l++) begin : gen_lane
    logic signed [InW-1:0]    x;
    logic signed [ConstW-1:0] b;
    logic signed [SumW-1:0]   sum;
    assign x   = in_tdata[l*InW +: InW];
    assign b   = consts[l*ConstW +: ConstW];
    assign sum = SumW'(x) + SumW'(b);
    bhpe_epi_sat #(.InW(SumW), .OutW(OutW)) u_sat (.in_i(sum), .out_o(res[l*OutW +: OutW]));
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
