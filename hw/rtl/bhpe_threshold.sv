// Per-channel threshold (BNN-PYNQ style BatchNorm + Sign, docs/numerics.md):
//   y = (x >= T_c) when the channel's direction bit is 0, y = (x <= T_c) when it is 1 (a negative
//   BatchNorm scale), one bit an element (1 stands for +1).
// Lanes signed InW-bit elements a beat in raster order, C channels a pixel (Lanes divides C). The ROM
// (InitFile, $readmemh) holds C/Lanes words; each word holds Lanes entries of ThrW+1 bits, lane 0 in the
// LSBs, an entry being {dir, T_c} (T_c signed ThrW bits in the low bits, dir the top bit).
// One registered stage: latency 1 cycle, one beat a cycle.
module bhpe_threshold #(
  parameter int unsigned Lanes    = 1,
  parameter int unsigned C        = 1,
  parameter int unsigned InW      = 16,
  parameter int unsigned ThrW     = 16,
  parameter string       InitFile = ""
) (
  input  logic                 clk_i,
  input  logic                 rst_ni,
  input  logic [Lanes*InW-1:0] in_tdata,
  input  logic                 in_tvalid,
  output logic                 in_tready,
  output logic [Lanes-1:0]     out_tdata,
  output logic                 out_tvalid,
  input  logic                 out_tready
);
  localparam int unsigned Depth  = C / Lanes;
  localparam int unsigned EntryW = ThrW + 1;
  localparam int unsigned CmpW   = (InW > ThrW) ? InW : ThrW;

  if (Lanes == 0 || C % Lanes != 0) begin : gen_bad_lanes
    $error("bhpe_threshold: Lanes must divide C");
  end

  logic [Lanes*EntryW-1:0] entries;
  logic [Lanes-1:0]        res;

  bhpe_epi_crom #(.Width(Lanes*EntryW), .Depth(Depth), .InitFile(InitFile)) u_rom (
    .clk_i, .rst_ni,
    .adv_i  (in_tvalid & in_tready),
    .data_o (entries)
  );

  for (genvar l = 0; l < Lanes; l++) begin : gen_lane
    logic signed [InW-1:0]  x;
    logic signed [ThrW-1:0] thr;
    logic                   dir;
    logic signed [CmpW-1:0] xe, te;
    assign x   = in_tdata[l*InW +: InW];
    assign thr = entries[l*EntryW +: ThrW];
    assign dir = entries[l*EntryW + ThrW];
    assign xe  = CmpW'(x);
    assign te  = CmpW'(thr);
    assign res[l] = dir ? (xe <= te) : (xe >= te);
  end

  bhpe_epi_reg #(.Width(Lanes)) u_reg (
    .clk_i, .rst_ni,
    .in_tdata (res),
    .in_tvalid,
    .in_tready,
    .out_tdata,
    .out_tvalid,
    .out_tready
  );
endmodule
