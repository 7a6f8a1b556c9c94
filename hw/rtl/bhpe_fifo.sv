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

  logic [Width-1:0] mem_q [Depth];
  logic [PtrW-1:0]  wptr_q, rptr_q;
  logic             empty_q, full_q;  // registered flags: tvalid and tready leave flip-flops, no comparator

  assign in_tready  = ~full_q;
  assign out_tvalid = ~empty_q;
  assign out_tdata  = mem_q[rptr_q];

  function automatic logic [PtrW-1:0] next_ptr(input logic [PtrW-1:0] p);
    return (p == PtrW'(Depth - 1)) ? '0 : p + PtrW'(1);
  endfunction

  // one process holds the whole next-state logic, its push / pop / next pointers local to it: a simulator
  // keeps them in the process (not as module signals, each written and read back every cycle)
  always_ff @(posedge clk_i) begin : p_state
    logic push, pop;
    logic [PtrW-1:0] wptr_nx, rptr_nx;
    push = in_tvalid & ~full_q;
    pop  = ~empty_q & out_tready;
    wptr_nx = next_ptr(wptr_q);
    rptr_nx = next_ptr(rptr_q);
    if (!rst_ni) begin
      wptr_q  <= '0;
      rptr_q  <= '0;
      empty_q <= 1'b1;
      full_q  <= 1'b0;
    end else begin
      if (push) wptr_q <= wptr_nx;
      if (pop)  rptr_q <= rptr_nx;
      if (push && !pop) begin         // one more entry: no longer empty, full when the writer meets the reader
        empty_q <= 1'b0;
        full_q  <= (wptr_nx == rptr_q);
      end else if (pop && !push) begin  // one fewer: no longer full, empty when the reader meets the writer
        full_q  <= 1'b0;
        empty_q <= (rptr_nx == wptr_q);
      end
    end
  end

  always_ff @(posedge clk_i) begin
    if (in_tvalid && !full_q) mem_q[wptr_q] <= in_tdata;
  end

  // ---- stream protocol check of the stream this module drives (simulation only) ---------------------
  bhpe_stream_assert #(.DataW(Width)) u_out_assert (
    .clk_i, .rst_ni, .tdata_i(out_tdata), .tvalid_i(out_tvalid), .tready_i(out_tready)
  );
endmodule
