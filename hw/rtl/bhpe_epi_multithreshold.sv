// Per-channel multi-threshold (FINN-style MultiThreshold): y = number of thresholds T_c,i (i < 2^OutW - 1)
// with x >= T_c,i, an unsigned OutW-bit element (a k-bit activation from a k-bit uniform quantizer).
// Lanes signed InW-bit elements a beat in raster order, C channels a pixel (Lanes divides C). The ROM
// (InitFile, $readmemh) holds C/Lanes words; each word holds Lanes groups of NumThr signed ThrW-bit
// thresholds, lane 0 in the LSBs, threshold i of a lane at bit i*ThrW of its group (order is free: the
// count does not need them sorted). One registered stage: latency 1 cycle, one beat a cycle.
module bhpe_epi_multithreshold #(
  parameter int unsigned Lanes    = 1,
  parameter int unsigned C        = 1,
  parameter int unsigned InW      = 16,
  parameter int unsigned ThrW     = 16,
  parameter int unsigned OutW     = 2,
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
  localparam int unsigned NumThr = (1 << OutW) - 1;
  localparam int unsigned GroupW = NumThr * ThrW;
  localparam int unsigned CmpW   = (InW > ThrW) ? InW : ThrW;

  if (Lanes == 0 || C % Lanes != 0) begin : gen_bad_lanes
    $error("bhpe_epi_multithreshold: Lanes must divide C");
  end

  logic [Lanes*GroupW-1:0] thrs;
  logic [Lanes*OutW-1:0]   res;

  bhpe_epi_crom #(.Width(Lanes*GroupW), .Depth(Depth), .InitFile(InitFile)) u_rom (
    .clk_i, .rst_ni,
    .adv_i  (in_tvalid & in_tready),
    .data_o (thrs)
  );

  for (genvar l = 0; l < Lanes; l++) begin : gen_lane
    logic signed [InW-1:0]  x;
    logic signed [CmpW-1:0] xe;
    logic [NumThr-1:0]      ge;
    logic [OutW-1:0]        count;
    assign x  = in_tdata[l*InW +: InW];
    assign xe = CmpW'(x);
    for (genvar i = 0; i < NumThr; i++) begin : gen_thr
      logic signed [ThrW-1:0] t;
      assign t     = thrs[l*GroupW + i*ThrW +: ThrW];
      assign ge[i] = (xe >= CmpW'(t));
    end
    always_comb begin
      count = '0;
      for (int unsigned i = 0; i < NumThr; i++) begin
        count = count + OutW'(ge[i]);
      end
    end
    assign res[l*OutW +: OutW] = count;
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
