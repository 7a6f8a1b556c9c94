`ifndef BHPE_PKG_SV
`include "bhpe_pkg.sv"
`endif
`ifndef BHPE_ENG_RAM_SV
`define BHPE_ENG_RAM_SV

// Simple dual-port RAM of the engine's buffers: one write port with byte enables, one read port with a
// registered read (the data of the address presented in cycle n is valid in cycle n + 1; no read enable).
//
// Written in the pattern both Yosys (ECP5 DP16KD / Xilinx RAMB) and Vivado infer as block RAM: one clocked
// process per port, a byte-enable loop on the write side, no reset of the array or of the read register.
// Width must be a multiple of 8. A read of the address being written in the same cycle is undefined (the engine
// never uses one).
module bhpe_eng_ram #(
  parameter int unsigned Width = 64,
  parameter int unsigned Depth = 1024,
  localparam int unsigned AddrW = bhpe_pkg::clog2_min1(Depth),
  localparam int unsigned Bytes = Width / 8
) (
  input  logic             clk_i,
  input  logic             we_i,
  input  logic [AddrW-1:0] waddr_i,
  input  logic [Width-1:0] wdata_i,
  input  logic [Bytes-1:0] wbe_i,
  input  logic [AddrW-1:0] raddr_i,
  output logic [Width-1:0] rdata_o
);
  // no_rw_check: the engine never uses a word read in the cycle it is written (the buffer rules keep the writer and
  // the reader on different slots), so Yosys need not add collision logic
  (* no_rw_check *)
  logic [Width-1:0] mem_q [Depth];

  always_ff @(posedge clk_i) begin
    if (we_i) begin
      for (int unsigned b = 0; b < Bytes; b++) begin
        if (wbe_i[b]) mem_q[waddr_i][b*8 +: 8] <= wdata_i[b*8 +: 8];
      end
    end
  end

  always_ff @(posedge clk_i) begin
    rdata_o <= mem_q[raddr_i];
  end

`ifndef SYNTHESIS
  initial begin
    if (Width % 8 != 0) $fatal(1, "%m: Width %0d is not a multiple of 8", Width);
  end
`endif
endmodule
`endif  // BHPE_ENG_RAM_SV
