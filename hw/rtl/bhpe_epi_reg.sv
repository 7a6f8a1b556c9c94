// Output register stage of the elementwise epilogues: a registered valid/ready stage that sustains
// one beat a cycle (in_tready = !valid_q | out_tready). Latency 1 cycle. in_tdata is the combinational
// result of the caller's datapath on the beat that is offered on in_*.
module bhpe_epi_reg #(
  parameter int unsigned Width = 8
) (
  input  logic             clk_i,
  input  logic             rst_ni,
  input  logic [Width-1:0] in_tdata,
  input  logic             in_tvalid,
  output logic             in_tready,
  output logic [Width-1:0] out_tdata,
  output logic             out_tvalid,
  input  logic             out_tready
);
  logic [Width-1:0] data_q, data_d;
  logic             valid_q, valid_d;

  assign in_tready  = ~valid_q | out_tready;
  assign out_tdata  = data_q;
  assign out_tvalid = valid_q;

  always_comb begin
    valid_d = valid_q;
    data_d  = data_q;
    if (in_tready) begin
      valid_d = in_tvalid;
      if (in_tvalid) data_d = in_tdata;
    end
  end

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      valid_q <= 1'b0;
    end else begin
      valid_q <= valid_d;
    end
  end

  always_ff @(posedge clk_i) begin
    data_q <= data_d;
  end
endmodule
