// Protocol checker of one valid/ready stream (AXI-Stream semantics), for simulation only.
//
// Every module of the library instantiates one on each stream it drives (the out_* streams: its own
// promise; the stream it consumes is checked by the module that drives it). From the first clock edge
// after reset (rst_ni high) on:
//   valid_known: tvalid is never X or Z (4-state simulators; Verilator is 2-state, where --x-initial
//                unique and a random reset make a missing reset show as a wrong or spurious beat instead);
//   valid_held:  once tvalid is high it stays high until the beat is taken (tvalid & tready);
//   data_stable: while a beat waits (tvalid & ~tready), tdata (with the mask sideband, if any, packed in
//                by the caller) does not change.
// Each property is checked at the clock edge on the values just before it, against a register of the stream
// as the previous edge saw it (whether a beat waited, and its data): the same checks as
// "tvalid & ~tready |=> tvalid / $stable(tdata)" with "disable iff (!rst_ni)", without a concurrent
// assertion's sampled copy of every variable the tdata expression reads (a whole FIFO memory, in Verilator, at
// every evaluation). A check is an if with $error, not an immediate assert: Verilator asks its context whether
// assertions are on at every assert it evaluates, three a stream a cycle (4% of the tiny BiDRN's simulation).
// The checks are compiled out when SYNTHESIS is defined (Yosys/slang, Vivado and Quartus define it);
// simulations check them; a failing check stops the simulation with an error naming the instance (the
// first $error stops a Verilator model).
module bhpe_stream_assert #(
  parameter int unsigned DataW = 1
) (
  input logic             clk_i,
  input logic             rst_ni,
  input logic [DataW-1:0] tdata_i,
  input logic             tvalid_i,
  input logic             tready_i
);
`ifndef SYNTHESIS
  logic             wait_q;  // at the previous edge, out of reset: a beat was offered and not taken
  logic [DataW-1:0] data_q;  // tdata at the previous edge

  always_ff @(posedge clk_i) begin
    if (rst_ni) begin
      if ($isunknown(tvalid_i)) $error("%m: tvalid is X after reset");
      if (wait_q && !tvalid_i) $error("%m: tvalid dropped before tready took the beat");
      if (wait_q && tdata_i !== data_q) $error("%m: tdata changed while the beat waited for tready");
    end
    wait_q <= rst_ni && tvalid_i && !tready_i;
    data_q <= tdata_i;
  end
`endif
endmodule
