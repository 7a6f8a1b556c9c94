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
// The properties are compiled out when SYNTHESIS is defined (Yosys/slang, Vivado and Quartus define it);
// Simulations with Verilator check them (built with --assert: sim/runner.py and sim/netsim.py always pass it); a
// failing property stops the simulation with an error naming the instance.
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
  valid_known : assert property (@(posedge clk_i) disable iff (!rst_ni) !$isunknown(tvalid_i))
    else $error("%m: tvalid is X after reset");
  valid_held : assert property (@(posedge clk_i) disable iff (!rst_ni) tvalid_i && !tready_i |=> tvalid_i)
    else $error("%m: tvalid dropped before tready took the beat");
  data_stable : assert property (@(posedge clk_i) disable iff (!rst_ni)
                                 tvalid_i && !tready_i |=> $stable(tdata_i))
    else $error("%m: tdata changed while the beat waited for tready");
`endif
endmodule
