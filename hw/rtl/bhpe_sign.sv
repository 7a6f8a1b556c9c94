// Binary activation (Sign, eq. 1 of docs/numerics.md): y = (x >= 0) ? 1 : 0, one bit an element
// (1 stands for +1, 0 for -1). Lanes signed InW-bit elements a beat in, Lanes bits a beat out (lane 0 in
// the LSB). One registered stage: latency 1 cycle, one beat a cycle.
module bhpe_sign #(
  parameter int unsigned Lanes = 1,
  parameter int unsigned InW   = 8
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
  logic [Lanes-1:0] res;

  for (genvar l = 0; l < Lanes; l++) begin : gen_lane
    assign res[l] = ~in_tdata[l*InW + InW - 1];
  end

  // only the sign bits are used
  logic unused_low;
  assign unused_low = ^in_tdata;

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
