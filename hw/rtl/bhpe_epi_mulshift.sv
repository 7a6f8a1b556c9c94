// Per-channel multiply-shift epilogue: y = sat_OutW((m_c * x) >>> Shift) per element, m_c a signed
// ConstW-bit constant of channel c, Shift >= 0 an arithmetic shift right (floor), Shift < 0 an exact left
// shift by -Shift (alpha scaling of the popcount, BatchNorm scale; docs/numerics.md).
// Lanes signed InW-bit elements a beat in raster order, C channels a pixel (Lanes divides C); the constant
// ROM (InitFile, $readmemh) holds C/Lanes words of Lanes constants, lane 0 in the LSBs.
// One registered stage: latency 1 cycle, one beat a cycle.
module bhpe_epi_mulshift #(
  parameter int unsigned Lanes    = 1,
  parameter int unsigned C        = 1,
  parameter int unsigned InW      = 16,
  parameter int unsigned ConstW   = 8,
  parameter int unsigned OutW     = 16,
  parameter int          Shift    = 0,
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
  localparam int unsigned Depth  = C / Lanes;
  localparam int unsigned LShift = (Shift < 0) ? 32'(-Shift) : 32'd0;
  localparam int unsigned RShift = (Shift > 0) ? 32'(Shift) : 32'd0;
  localparam int unsigned ProdW  = InW + ConstW;
  localparam int unsigned WideW  = ProdW + LShift;

  if (Lanes == 0 || C % Lanes != 0) begin : gen_bad_lanes
    $error("bhpe_epi_mulshift: Lanes must divide C");
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
    logic signed [ConstW-1:0] m;
    logic signed [ProdW-1:0]  prod;
    logic signed [WideW-1:0]  wide;
    assign x    = in_tdata[l*InW +: InW];
    assign m    = consts[l*ConstW +: ConstW];
    assign prod = ProdW'(x) * ProdW'(m);
    assign wide = (WideW'(prod) <<< LShift) >>> RShift;
    bhpe_epi_sat #(.InW(WideW), .OutW(OutW)) u_sat (.in_i(wide), .out_o(res[l*OutW +: OutW]));
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
