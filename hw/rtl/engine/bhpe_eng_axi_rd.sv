`ifndef BHPE_PKG_SV
`include "bhpe_pkg.sv"
`endif
`ifndef BHPE_ENG_AXI_RD_SV
`define BHPE_ENG_AXI_RD_SV

// AXI4 read master of the layer-sequential engine (docs/engine.md, "Units").
//
// Clients ask for `req_words_i` consecutive 64-bit words from byte address `req_addr_i` (a multiple of 8) with a
// valid/ready request; client 0 has the highest priority (the engine's order: descriptor, constants, weights,
// b rows, input rows). The accepted request is cut into INCR bursts of at most 256 beats that never cross a 4 KiB
// boundary, issued one a cycle while fewer than MaxOut bursts are outstanding; the next request is accepted in the
// cycle the last burst of the current one is issued (so one-burst requests go out one a cycle). All bursts use
// ID 0, so the data returns in order: a FIFO of the client of each outstanding burst routes every R beat to its
// client (rvalid_o[client], rdata_o).
// Clients always take their beats (rready is 1): every client writes a beat straight into a buffer.
//
// Cost: a request accepted in cycle c (req_ready_o) has its first AR valid in cycle c + 2 (c + 1: the burst is
// issued into the AR register); one AR a cycle; the R beats stream back-to-back as fast as the DRAM delivers them.
// err_o is sticky (until reset or clr_err_i): a read response other than OKAY (or EXOKAY) was seen.
module bhpe_eng_axi_rd #(
  parameter int unsigned NClients = 5,
  parameter int unsigned AddrW    = 40,
  parameter int unsigned IdW      = 1,
  parameter int unsigned MaxOut   = 32,
  localparam int unsigned CliW    = bhpe_pkg::clog2_min1(NClients)
) (
  input  logic                              clk_i,
  input  logic                              rst_ni,
  // requests
  input  logic [NClients-1:0]               req_valid_i,
  output logic [NClients-1:0]               req_ready_o,
  input  logic [NClients-1:0][AddrW-1:0]    req_addr_i,
  input  logic [NClients-1:0][31:0]         req_words_i,
  // data to the clients
  output logic [NClients-1:0]               rvalid_o,
  output logic [63:0]                       rdata_o,
  input  logic                              clr_err_i,
  output logic                              err_o,
  // AXI4 AR / R
  output logic [IdW-1:0]                    m_axi_arid,
  output logic [AddrW-1:0]                  m_axi_araddr,
  output logic [7:0]                        m_axi_arlen,
  output logic [2:0]                        m_axi_arsize,
  output logic [1:0]                        m_axi_arburst,
  output logic                              m_axi_arvalid,
  input  logic                              m_axi_arready,
  input  logic [IdW-1:0]                    m_axi_rid,
  input  logic [63:0]                       m_axi_rdata,
  input  logic [1:0]                        m_axi_rresp,
  input  logic                              m_axi_rlast,
  input  logic                              m_axi_rvalid,
  output logic                              m_axi_rready
);
  // ---- request arbitration (fixed priority) and splitting into bursts ------------------------------
  logic             ar_free, issue, issue_last, fifo_ready, fifo_valid, pop;
  logic [CliW-1:0]  head_cli;
  logic             busy_q;
  logic [AddrW-1:0] addr_q;
  logic [31:0]      left_q;
  logic [CliW-1:0]  cli_q;
  logic             grant;
  logic [CliW-1:0]  grant_cli;

  always_comb begin
    grant     = 1'b0;
    grant_cli = '0;
    for (int i = NClients - 1; i >= 0; i--) begin
      if (req_valid_i[i]) begin
        grant     = 1'b1;
        grant_cli = CliW'(i);
      end
    end
    grant       = grant & (~busy_q | issue_last);
    req_ready_o = '0;
    if (grant) req_ready_o[grant_cli] = 1'b1;
  end

  // beats of the next burst: min(left, 256, words to the next 4 KiB boundary)
  logic [9:0]  to_4k;
  logic [31:0] beats;
  assign to_4k = 10'd512 - {1'b0, addr_q[11:3]};
  always_comb begin
    beats = left_q;
    if (beats > 32'd256) beats = 32'd256;
    if (beats > {22'd0, to_4k}) beats = {22'd0, to_4k};
  end

  // the AR register and the FIFO of outstanding bursts' clients; a new request is taken in the cycle the last
  // burst of the current one is issued
  assign ar_free    = ~m_axi_arvalid | m_axi_arready;
  assign issue      = busy_q & ar_free & fifo_ready;
  assign issue_last = issue & (left_q == beats);


  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      busy_q        <= 1'b0;
      addr_q        <= '0;
      left_q        <= '0;
      cli_q         <= '0;
      m_axi_arvalid <= 1'b0;
      m_axi_araddr  <= '0;
      m_axi_arlen   <= '0;
    end else begin
      if (m_axi_arready) m_axi_arvalid <= 1'b0;
      if (issue) begin
        m_axi_arvalid <= 1'b1;
        m_axi_araddr  <= addr_q;
        m_axi_arlen   <= 8'(beats - 32'd1);
        addr_q        <= addr_q + AddrW'({beats, 3'b000});
        left_q        <= left_q - beats;
        busy_q        <= ~issue_last;
      end
      if (grant) begin
        busy_q <= (req_words_i[grant_cli] != 32'd0);
        addr_q <= req_addr_i[grant_cli];
        left_q <= req_words_i[grant_cli];
        cli_q  <= grant_cli;
      end
    end
  end

  assign m_axi_arid    = '0;
  assign m_axi_arsize  = 3'd3;   // 8 bytes a beat
  assign m_axi_arburst = 2'b01;  // INCR

  assign pop = m_axi_rvalid & m_axi_rready & m_axi_rlast;
  bhpe_fifo #(.Width(CliW), .Depth(MaxOut)) u_out_fifo (
    .clk_i, .rst_ni,
    .in_tdata(cli_q), .in_tvalid(issue), .in_tready(fifo_ready),
    .out_tdata(head_cli), .out_tvalid(fifo_valid), .out_tready(pop)
  );

  // ---- R: route each beat to the client of the oldest outstanding burst ----------------------------
  assign m_axi_rready = 1'b1;
  assign rdata_o      = m_axi_rdata;
  always_comb begin
    rvalid_o = '0;
    if (m_axi_rvalid && fifo_valid) rvalid_o[head_cli] = 1'b1;
  end

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      err_o <= 1'b0;
    end else if (clr_err_i) begin
      err_o <= 1'b0;
    end else if (m_axi_rvalid && m_axi_rresp[1]) begin
      err_o <= 1'b1;
    end
  end

  // ---- protocol checks (simulation only) -------------------------------------------------------------
  bhpe_stream_assert #(.DataW(AddrW + 8)) u_ar_assert (
    .clk_i, .rst_ni, .tdata_i({m_axi_araddr, m_axi_arlen}), .tvalid_i(m_axi_arvalid), .tready_i(m_axi_arready)
  );
`ifndef SYNTHESIS
  r_expected : assert property (@(posedge clk_i) disable iff (!rst_ni) m_axi_rvalid |-> fifo_valid)
    else $error("%m: an R beat arrived with no read burst outstanding");
  ar_no_4k_cross : assert property (@(posedge clk_i) disable iff (!rst_ni)
      m_axi_arvalid |-> ({1'b0, m_axi_araddr[11:3]} + {2'b0, m_axi_arlen}) < 10'd512)
    else $error("%m: a read burst crosses a 4 KiB boundary");
`endif
  logic unused_rid;
  assign unused_rid = ^{m_axi_rid, m_axi_rresp[0]};
endmodule
`endif  // BHPE_ENG_AXI_RD_SV
