`ifndef BHPE_ENG_AXI_WR_SV
`define BHPE_ENG_AXI_WR_SV
// AXI4 write master of the layer-sequential engine (docs/engine.md, "Units"): the store's output rows to DRAM.
//
// A request (valid/ready) asks to write `req_words_i` 64-bit words from byte address `req_addr_i` (a multiple of
// 8); the words themselves, with their byte strobes, follow in order on the data stream wd_* (all requests'
// words back to back). A request is cut into INCR bursts of at most 256 beats that never cross a 4 KiB boundary,
// one AW a cycle while fewer than MaxOut bursts wait for their write response; the next request is taken in the
// cycle the current one's last burst is issued. W beats go out only for bursts whose AW has been issued (wlast on
// each burst's last beat). done_o pulses once per request, when the write
// response of its last burst arrives (responses come in order: one ID). err_o is sticky (until clr_err_i): a
// write response other than OKAY was seen.
module bhpe_eng_axi_wr #(
  parameter int unsigned AddrW  = 40,
  parameter int unsigned IdW    = 1,
  parameter int unsigned MaxOut = 32
) (
  input  logic             clk_i,
  input  logic             rst_ni,
  input  logic             req_valid_i,
  output logic             req_ready_o,
  input  logic [AddrW-1:0] req_addr_i,
  input  logic [31:0]      req_words_i,
  input  logic             wd_valid_i,
  output logic             wd_ready_o,
  input  logic [63:0]      wd_data_i,
  input  logic [7:0]       wd_strb_i,
  output logic             done_o,
  input  logic             clr_err_i,
  output logic             err_o,
  // AXI4 AW / W / B
  output logic [IdW-1:0]   m_axi_awid,
  output logic [AddrW-1:0] m_axi_awaddr,
  output logic [7:0]       m_axi_awlen,
  output logic [2:0]       m_axi_awsize,
  output logic [1:0]       m_axi_awburst,
  output logic             m_axi_awvalid,
  input  logic             m_axi_awready,
  output logic [63:0]      m_axi_wdata,
  output logic [7:0]       m_axi_wstrb,
  output logic             m_axi_wlast,
  output logic             m_axi_wvalid,
  input  logic             m_axi_wready,
  input  logic [IdW-1:0]   m_axi_bid,
  input  logic [1:0]       m_axi_bresp,
  input  logic             m_axi_bvalid,
  output logic             m_axi_bready
);
  // ---- splitting the current request into bursts ----------------------------------------------------
  logic             busy_q;
  logic [AddrW-1:0] addr_q;
  logic [31:0]      left_q;
  logic [9:0]       to_4k;
  logic [31:0]      beats;
  logic             aw_free, issue, wq_ready, bq_ready, last_burst;

  assign req_ready_o = ~busy_q | (issue & last_burst);  // a new request in the cycle of the last burst's AW
  assign to_4k = 10'd512 - {1'b0, addr_q[11:3]};
  always_comb begin
    beats = left_q;
    if (beats > 32'd256) beats = 32'd256;
    if (beats > {22'd0, to_4k}) beats = {22'd0, to_4k};
  end
  assign last_burst = (left_q == beats);
  assign aw_free    = ~m_axi_awvalid | m_axi_awready;
  assign issue      = busy_q & aw_free & wq_ready & bq_ready;

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      busy_q        <= 1'b0;
      addr_q        <= '0;
      left_q        <= '0;
      m_axi_awvalid <= 1'b0;
      m_axi_awaddr  <= '0;
      m_axi_awlen   <= '0;
    end else begin
      if (m_axi_awready) m_axi_awvalid <= 1'b0;
      if (issue) begin
        m_axi_awvalid <= 1'b1;
        m_axi_awaddr  <= addr_q;
        m_axi_awlen   <= 8'(beats - 32'd1);
        addr_q        <= addr_q + AddrW'({beats, 3'b000});
        left_q        <= left_q - beats;
        busy_q        <= ~last_burst;
      end
      if (req_valid_i && req_ready_o) begin
        busy_q <= (req_words_i != 32'd0);
        addr_q <= req_addr_i;
        left_q <= req_words_i;
      end
    end
  end

  assign m_axi_awid    = '0;
  assign m_axi_awsize  = 3'd3;
  assign m_axi_awburst = 2'b01;

  // ---- W: the beats of issued bursts -----------------------------------------------------------------
  logic       wq_valid, w_fire, w_last;
  logic [7:0] wq_len, wcnt_q;
  bhpe_fifo #(.Width(8), .Depth(MaxOut)) u_wq (
    .clk_i, .rst_ni,
    .in_tdata(8'(beats - 32'd1)), .in_tvalid(issue), .in_tready(wq_ready),
    .out_tdata(wq_len), .out_tvalid(wq_valid), .out_tready(w_fire & w_last)
  );
  assign w_last       = (wcnt_q == wq_len);
  assign m_axi_wvalid = wd_valid_i & wq_valid;
  assign wd_ready_o   = m_axi_wready & wq_valid;
  assign m_axi_wdata  = wd_data_i;
  assign m_axi_wstrb  = wd_strb_i;
  assign m_axi_wlast  = w_last;
  assign w_fire       = m_axi_wvalid & m_axi_wready;

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      wcnt_q <= '0;
    end else if (w_fire) begin
      wcnt_q <= w_last ? 8'd0 : wcnt_q + 8'd1;
    end
  end

  // ---- B: one response per burst; done_o on the response of a request's last burst --------------------
  logic bq_valid, bq_last, b_fire;
  bhpe_fifo #(.Width(1), .Depth(MaxOut)) u_bq (
    .clk_i, .rst_ni,
    .in_tdata(last_burst), .in_tvalid(issue), .in_tready(bq_ready),
    .out_tdata(bq_last), .out_tvalid(bq_valid), .out_tready(b_fire)
  );
  assign m_axi_bready = 1'b1;
  assign b_fire       = m_axi_bvalid & m_axi_bready;
  assign done_o       = b_fire & bq_valid & bq_last;

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      err_o <= 1'b0;
    end else if (clr_err_i) begin
      err_o <= 1'b0;
    end else if (b_fire && m_axi_bresp[1]) begin
      err_o <= 1'b1;
    end
  end

  // ---- protocol checks (simulation only) -------------------------------------------------------------
  bhpe_stream_assert #(.DataW(AddrW + 8)) u_aw_assert (
    .clk_i, .rst_ni, .tdata_i({m_axi_awaddr, m_axi_awlen}), .tvalid_i(m_axi_awvalid), .tready_i(m_axi_awready)
  );
  bhpe_stream_assert #(.DataW(64 + 8 + 1)) u_w_assert (
    .clk_i, .rst_ni, .tdata_i({m_axi_wdata, m_axi_wstrb, m_axi_wlast}), .tvalid_i(m_axi_wvalid),
    .tready_i(m_axi_wready)
  );
`ifndef SYNTHESIS
  b_expected : assert property (@(posedge clk_i) disable iff (!rst_ni) m_axi_bvalid |-> bq_valid)
    else $error("%m: a write response arrived with no write burst outstanding");
`endif
  logic unused_b;
  assign unused_b = ^{m_axi_bid, m_axi_bresp[0]};
endmodule
`endif  // BHPE_ENG_AXI_WR_SV
