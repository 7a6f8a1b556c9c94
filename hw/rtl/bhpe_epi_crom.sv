// Per-channel constant ROM of the elementwise epilogues. Depth words of Width bits (one word = the
// constants of one channel group of Lanes channels, lane 0 in the LSBs), loaded with $readmemh from
// InitFile. data_o holds the word of the current channel group; adv_i (one accepted input beat) moves to
// the next group, wrapping after Depth groups (one pixel). The ROM read is synchronous (address =
// next group), so it maps to block RAM as well as to distributed ROM.
module bhpe_epi_crom #(
  parameter int unsigned Width    = 8,
  parameter int unsigned Depth    = 1,
  parameter string       InitFile = ""
) (
  input  logic             clk_i,
  input  logic             rst_ni,
  input  logic             adv_i,
  output logic [Width-1:0] data_o
);
  localparam int unsigned AddrW = (Depth > 1) ? $clog2(Depth) : 1;

  logic [Width-1:0] rom [Depth];
  logic [Width-1:0] data_q;
  logic [AddrW-1:0] grp_q, grp_d, addr;

  initial begin
    if (InitFile != "") $readmemh(InitFile, rom);
  end

  always_comb begin
    grp_d = grp_q;
    if (adv_i) grp_d = (grp_q == AddrW'(Depth - 1)) ? '0 : grp_q + AddrW'(1);
  end
  assign addr   = rst_ni ? grp_d : '0;
  assign data_o = data_q;

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      grp_q <= '0;
    end else begin
      grp_q <= grp_d;
    end
  end

  always_ff @(posedge clk_i) begin
    data_q <= rom[addr];
  end
endmodule
