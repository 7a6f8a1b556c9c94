// Per-channel PReLU epilogue (the slope of RPReLU, eq. 6): y = x > 0 ? sat_OutW(x)
// : sat_OutW((beta_c * x) >>> Shift), beta_c a signed ConstW-bit constant of channel c, Shift >= 0 an
// arithmetic shift right (floor), Shift < 0 an exact left shift by -Shift (docs/numerics.md).
// Lanes signed InW-bit elements a beat in raster order, C channels a pixel (Lanes divides C); the constant
// ROM (InitFile, $readmemh) holds C/Lanes words of Lanes constants, lane 0 in the LSBs.
// One registered stage: latency 1 cycle, one beat a cycle.
module bhpe_epi_prelu #(
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
    $error("bhpe_epi_prelu: Lanes must divide C");
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
    logic signed [ConstW-1:0] beta;
    logic signed [ProdW-1:0]  prod;
    logic signed [WideW-1:0]  wide;
    logic signed [OutW-1:0]   y_pos, y_neg;
    assign x    = in_tdata[l*InW +: InW];
    assign beta = consts[l*ConstW +: ConstW];
    assign prod = ProdW'(x) * ProdW'(beta);
    assign wide = (WideW'(prod) <<< LShift) >>> RShift;
    bhpe_epi_sat #(.InW(InW),   .OutW(OutW)) u_sat_pos (.in_i(x),    .out_o(y_pos));
    bhpe_epi_sat #(.InW(WideW), .OutW(OutW)) u_sat_neg (.in_i(wide), .out_o(y_neg));
    // x > 0: not negative and not zero
    assign res[l*OutW +: OutW] = (!x[InW-1] && (x != '0)) ? y_pos : y_neg;
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
