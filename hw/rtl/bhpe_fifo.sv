`ifndef BHPE_PKG_SV
`include "bhpe_pkg.sv"
`endif

// Synchronous FIFO with valid/ready streams (AXI-Stream semantics). Depth >= 1 entries.
// A full FIFO deasserts in_tready; data is never dropped or duplicated.
module bhpe_fifo #(
  parameter int unsigned Width = 8,
  parameter int unsigned Depth = 4
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
  localparam int unsigned PtrW = bhpe_pkg::clog2_min1(Depth);
  localparam int unsigned CntW = bhpe_pkg::count_width(Depth);

  logic [Width-1:0] mem_q [Depth];
  logic [PtrW-1:0]  wptr_q, wptr_d, rptr_q, rptr_d;
  logic [CntW-1:0]  count_q, count_d;
  logic             push, pop;

  assign in_tready  = (count_q != CntW'(Depth));
  assign out_tvalid = (count_q != '0);
  assign out_tdata  = mem_q[rptr_q];
  assign push = in_tvalid & in_tready;
  assign pop  = out_tvalid & out_tready;

  function automatic logic [PtrW-1:0] next_ptr(input logic [PtrW-1:0] p);
    return (p == PtrW'(Depth - 1)) ? '0 : p + PtrW'(1);
  endfunction

  always_comb begin
    wptr_d  = push ? next_ptr(wptr_q) : wptr_q;
    rptr_d  = pop ? next_ptr(rptr_q) : rptr_q;
    count_d = count_q;
    if (push && !pop)      count_d = count_q + CntW'(1);
    else if (pop && !push) count_d = count_q - CntW'(1);
  end

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      wptr_q  <= '0;
      rptr_q  <= '0;
      count_q <= '0;
    end else begin
      wptr_q  <= wptr_d;
      rptr_q  <= rptr_d;
      count_q <= count_d;
    end
  end

  always_ff @(posedge clk_i) begin
    if (push) mem_q[wptr_q] <= in_tdata;
  end

  // ---- stream protocol check of the stream this module drives (simulation only) ---------------------
  bhpe_stream_assert #(.DataW(Width)) u_out_assert (
    .clk_i, .rst_ni, .tdata_i(out_tdata), .tvalid_i(out_tvalid), .tready_i(out_tready)
  );
endmodule
