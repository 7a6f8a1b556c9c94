`ifndef BHPE_PKG_SV
`include "bhpe_pkg.sv"
`endif
`ifndef BHPE_ENG_PKG_SV
`include "engine/bhpe_eng_pkg.sv"
`endif
`ifndef BHPE_ENG_AXIL_SV
`include "engine/bhpe_eng_axil.sv"
`endif
`ifndef BHPE_ENG_CTRL_SV
`include "engine/bhpe_eng_ctrl.sv"
`endif
`ifndef BHPE_ENG_AXI_RD_SV
`include "engine/bhpe_eng_axi_rd.sv"
`endif
`ifndef BHPE_ENG_AXI_WR_SV
`include "engine/bhpe_eng_axi_wr.sv"
`endif
`ifndef BHPE_ENG_RAM_SV
`include "engine/bhpe_eng_ram.sv"
`endif
`ifndef BHPE_ENG_LOADER_SV
`include "engine/bhpe_eng_loader.sv"
`endif
`ifndef BHPE_ENG_COMPUTE_SV
`include "engine/bhpe_eng_compute.sv"
`endif
`ifndef BHPE_ENG_STORE_SV
`include "engine/bhpe_eng_store.sv"
`endif
`ifndef BHPE_ENGINE_SV
`define BHPE_ENGINE_SV

// The layer-sequential engine (docs/engine.md): one set of compute units programmed per layer by descriptors
// in DRAM. This top level connects the control (bhpe_eng_ctrl, with the AXI-Lite registers of bhpe_eng_axil),
// the DRAM side (bhpe_eng_axi_rd / bhpe_eng_axi_wr, one AXI4 master port), the loader and store, the five
// on-chip buffers (bhpe_eng_ram) and the compute unit (bhpe_eng_compute).
//
// Buffers (all simple dual-port, registered read):
//   line buffer   LbDepth x 64       loader writes input rows, compute reads
//   b buffer      BbDepth x 64       loader writes b rows (2 slots), compute reads
//   weight buffer WbDepth x PE*64    loader writes a tile's weights, compute reads (two halves when tiles fit)
//   const buffer  CbDepth x PE*32    loader writes the layer's constants, compute reads
//   output buffer ObDepth x 64       compute writes output rows (2 slots, byte strobes), store reads
// Read-master clients in priority order: descriptor (control), constants, weights, b rows, input rows (loader).
module bhpe_engine #(
  parameter int unsigned PE      = 16,
  parameter int unsigned PEF     = 4,
  parameter int unsigned LbDepth = 4096,
  parameter int unsigned WbDepth = 1024,
  parameter int unsigned CbDepth = 512,
  parameter int unsigned BbDepth = 1024,
  parameter int unsigned ObDepth = 2048,
  parameter int unsigned AddrW   = 40,
  parameter int unsigned IdW     = 1
) (
  input  logic             clk_i,
  input  logic             rst_ni,
  // AXI-Lite control
  input  logic [7:0]       s_axil_awaddr,
  input  logic             s_axil_awvalid,
  output logic             s_axil_awready,
  input  logic [31:0]      s_axil_wdata,
  input  logic [3:0]       s_axil_wstrb,
  input  logic             s_axil_wvalid,
  output logic             s_axil_wready,
  output logic [1:0]       s_axil_bresp,
  output logic             s_axil_bvalid,
  input  logic             s_axil_bready,
  input  logic [7:0]       s_axil_araddr,
  input  logic             s_axil_arvalid,
  output logic             s_axil_arready,
  output logic [31:0]      s_axil_rdata,
  output logic [1:0]       s_axil_rresp,
  output logic             s_axil_rvalid,
  input  logic             s_axil_rready,
  // AXI4 master (DRAM)
  output logic [IdW-1:0]   m_axi_arid,
  output logic [AddrW-1:0] m_axi_araddr,
  output logic [7:0]       m_axi_arlen,
  output logic [2:0]       m_axi_arsize,
  output logic [1:0]       m_axi_arburst,
  output logic             m_axi_arvalid,
  input  logic             m_axi_arready,
  input  logic [IdW-1:0]   m_axi_rid,
  input  logic [63:0]      m_axi_rdata,
  input  logic [1:0]       m_axi_rresp,
  input  logic             m_axi_rlast,
  input  logic             m_axi_rvalid,
  output logic             m_axi_rready,
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
  output logic             m_axi_bready,
  // status
  output logic             done_o,
  output logic             dbg_layer_start_o,
  output logic [31:0]      dbg_layer_o
);
  localparam int unsigned LbAW = bhpe_pkg::clog2_min1(LbDepth);
  localparam int unsigned WbAW = bhpe_pkg::clog2_min1(WbDepth);
  localparam int unsigned CbAW = bhpe_pkg::clog2_min1(CbDepth);
  localparam int unsigned BbAW = bhpe_pkg::clog2_min1(BbDepth);
  localparam int unsigned ObAW = bhpe_pkg::clog2_min1(ObDepth);

  // ---- registers and control ------------------------------------------------------------------------
  logic        start, busy, clr_err, rd_err, wr_err;
  logic [63:0] desc_addr, cycles;
  logic [31:0] error, layer;
  bhpe_eng_pkg::desc_t desc;

  bhpe_eng_axil u_axil (
    .clk_i, .rst_ni,
    .s_axil_awaddr, .s_axil_awvalid, .s_axil_awready, .s_axil_wdata, .s_axil_wstrb, .s_axil_wvalid,
    .s_axil_wready, .s_axil_bresp, .s_axil_bvalid, .s_axil_bready, .s_axil_araddr, .s_axil_arvalid,
    .s_axil_arready, .s_axil_rdata, .s_axil_rresp, .s_axil_rvalid, .s_axil_rready,
    .start_o(start), .desc_addr_o(desc_addr), .done_i(done_o), .busy_i(busy), .error_i(error),
    .cycles_i(cycles), .layer_i(layer)
  );

  // read-master clients: 0 descriptor, 1 constants, 2 weights, 3 b rows, 4 input rows
  logic [4:0]             rq_valid, rq_ready, rvalid;
  logic [4:0][AddrW-1:0]  rq_addr;
  logic [4:0][31:0]       rq_words;
  logic [63:0]            rdata;

  logic             const_start, const_busy, wt_start, wt_busy, ld_pass_busy, st_pass_busy;
  logic [AddrW-1:0] wt_addr;
  logic             wt_half, wt_bg, wb_rhalf;
  logic             pass_start, pass_done;
  logic [15:0]      pass_t, pass_s, pass_ox0, pass_owt;
  logic [31:0]      pass_b0;

  bhpe_eng_ctrl #(
    .PE(PE), .LbDepth(LbDepth), .WbDepth(WbDepth), .CbDepth(CbDepth), .BbDepth(BbDepth), .ObDepth(ObDepth),
    .AddrW(AddrW)
  ) u_ctrl (
    .clk_i, .rst_ni,
    .start_i(start), .desc_addr_i(desc_addr), .done_o, .busy_o(busy), .error_o(error), .cycles_o(cycles),
    .layer_o(layer), .layer_start_o(dbg_layer_start_o), .desc_o(desc),
    .req_valid_o(rq_valid[0]), .req_ready_i(rq_ready[0]), .req_addr_o(rq_addr[0]), .req_words_o(rq_words[0]),
    .rvalid_i(rvalid[0]), .rdata_i(rdata), .rd_err_i(rd_err), .wr_err_i(wr_err), .clr_err_o(clr_err),
    .const_start_o(const_start), .const_busy_i(const_busy), .wt_start_o(wt_start), .wt_addr_o(wt_addr),
    .wt_half_o(wt_half), .wt_bg_o(wt_bg), .wb_rhalf_o(wb_rhalf), .wt_busy_i(wt_busy), .ld_pass_busy_i(ld_pass_busy),
    .pass_start_o(pass_start), .pass_t_o(pass_t), .pass_s_o(pass_s), .pass_ox0_o(pass_ox0),
    .pass_owt_o(pass_owt), .pass_b0_o(pass_b0), .pass_done_i(pass_done), .st_pass_busy_i(st_pass_busy)
  );
  assign dbg_layer_o = layer;

  // ---- DRAM ----------------------------------------------------------------------------------------------
  bhpe_eng_axi_rd #(.NClients(5), .AddrW(AddrW), .IdW(IdW)) u_rd (
    .clk_i, .rst_ni,
    .req_valid_i(rq_valid), .req_ready_o(rq_ready), .req_addr_i(rq_addr), .req_words_i(rq_words),
    .rvalid_o(rvalid), .rdata_o(rdata), .clr_err_i(clr_err), .err_o(rd_err),
    .m_axi_arid, .m_axi_araddr, .m_axi_arlen, .m_axi_arsize, .m_axi_arburst, .m_axi_arvalid, .m_axi_arready,
    .m_axi_rid, .m_axi_rdata, .m_axi_rresp, .m_axi_rlast, .m_axi_rvalid, .m_axi_rready
  );

  logic             wq_valid, wq_ready, wd_valid, wd_ready, wr_done;
  logic [AddrW-1:0] wq_addr;
  logic [31:0]      wq_words;
  logic [63:0]      wd_data;
  logic [7:0]       wd_strb;

  bhpe_eng_axi_wr #(.AddrW(AddrW), .IdW(IdW)) u_wr (
    .clk_i, .rst_ni,
    .req_valid_i(wq_valid), .req_ready_o(wq_ready), .req_addr_i(wq_addr), .req_words_i(wq_words),
    .wd_valid_i(wd_valid), .wd_ready_o(wd_ready), .wd_data_i(wd_data), .wd_strb_i(wd_strb),
    .done_o(wr_done), .clr_err_i(clr_err), .err_o(wr_err),
    .m_axi_awid, .m_axi_awaddr, .m_axi_awlen, .m_axi_awsize, .m_axi_awburst, .m_axi_awvalid, .m_axi_awready,
    .m_axi_wdata, .m_axi_wstrb, .m_axi_wlast, .m_axi_wvalid, .m_axi_wready,
    .m_axi_bid, .m_axi_bresp, .m_axi_bvalid, .m_axi_bready
  );

  // ---- buffers -------------------------------------------------------------------------------------------
  logic            lb_we, bb_we, wb_we, cb_we, ob_we;
  logic [LbAW-1:0] lb_waddr, lb_raddr;
  logic [BbAW-1:0] bb_waddr, bb_raddr;
  logic [WbAW-1:0] wb_waddr, wb_raddr;
  logic [CbAW-1:0] cb_waddr, cb_raddr;
  logic [ObAW-1:0] ob_waddr, ob_raddr;
  logic [63:0]     lb_wdata, lb_rdata, bb_wdata, bb_rdata, ob_wdata, ob_rdata;
  logic [PE*64-1:0] wb_wdata, wb_rdata;
  logic [PE*32-1:0] cb_wdata, cb_rdata;
  logic [7:0]      ob_wstrb;

  bhpe_eng_ram #(.Width(64), .Depth(LbDepth)) u_lb (
    .clk_i, .we_i(lb_we), .waddr_i(lb_waddr), .wdata_i(lb_wdata), .wbe_i('1), .raddr_i(lb_raddr),
    .rdata_o(lb_rdata)
  );
  bhpe_eng_ram #(.Width(64), .Depth(BbDepth)) u_bb (
    .clk_i, .we_i(bb_we), .waddr_i(bb_waddr), .wdata_i(bb_wdata), .wbe_i('1), .raddr_i(bb_raddr),
    .rdata_o(bb_rdata)
  );
  // weight double buffering (bhpe_eng_ctrl): compute addresses its tile from word 0; the tile may live in the
  // upper half
  logic [WbAW-1:0] wb_raddr_buf;
  assign wb_raddr_buf = WbAW'(32'(wb_raddr) + (wb_rhalf ? 32'(WbDepth / 2) : 32'd0));
  bhpe_eng_ram #(.Width(PE * 64), .Depth(WbDepth)) u_wb (
    .clk_i, .we_i(wb_we), .waddr_i(wb_waddr), .wdata_i(wb_wdata), .wbe_i('1), .raddr_i(wb_raddr_buf),
    .rdata_o(wb_rdata)
  );
  bhpe_eng_ram #(.Width(PE * 32), .Depth(CbDepth)) u_cb (
    .clk_i, .we_i(cb_we), .waddr_i(cb_waddr), .wdata_i(cb_wdata), .wbe_i('1), .raddr_i(cb_raddr),
    .rdata_o(cb_rdata)
  );
  bhpe_eng_ram #(.Width(64), .Depth(ObDepth)) u_ob (
    .clk_i, .we_i(ob_we), .waddr_i(ob_waddr), .wdata_i(ob_wdata), .wbe_i(ob_wstrb), .raddr_i(ob_raddr),
    .rdata_o(ob_rdata)
  );

  // ---- loader, compute, store ---------------------------------------------------------------------------
  logic [15:0] oy, in_rows_loaded, b_rows_loaded, out_rows_done, out_rows_stored;

  bhpe_eng_loader #(
    .PE(PE), .LbDepth(LbDepth), .WbDepth(WbDepth), .CbDepth(CbDepth), .BbDepth(BbDepth), .AddrW(AddrW)
  ) u_loader (
    .clk_i, .rst_ni, .hdr_i(desc.hdr),
    .const_start_i(const_start), .const_busy_o(const_busy), .wt_start_i(wt_start), .wt_addr_i(wt_addr),
    .wt_half_i(wt_half), .wt_bg_i(wt_bg), .wt_busy_o(wt_busy), .pass_start_i(pass_start), .pass_ox0_i(pass_ox0), .pass_owt_i(pass_owt),
    .pass_busy_o(ld_pass_busy), .oy_i(oy), .in_rows_loaded_o(in_rows_loaded), .b_rows_loaded_o(b_rows_loaded),
    .req_valid_o(rq_valid[4:1]), .req_ready_i(rq_ready[4:1]), .req_addr_o(rq_addr[4:1]),
    .req_words_o(rq_words[4:1]), .rvalid_i(rvalid[4:1]), .rdata_i(rdata),
    .lb_we_o(lb_we), .lb_waddr_o(lb_waddr), .lb_wdata_o(lb_wdata),
    .bb_we_o(bb_we), .bb_waddr_o(bb_waddr), .bb_wdata_o(bb_wdata),
    .wb_we_o(wb_we), .wb_waddr_o(wb_waddr), .wb_wdata_o(wb_wdata),
    .cb_we_o(cb_we), .cb_waddr_o(cb_waddr), .cb_wdata_o(cb_wdata)
  );

  bhpe_eng_compute #(
    .PE(PE), .PEF(PEF), .LbDepth(LbDepth), .WbDepth(WbDepth), .CbDepth(CbDepth), .BbDepth(BbDepth),
    .ObDepth(ObDepth)
  ) u_compute (
    .clk_i, .rst_ni, .desc_i(desc),
    .pass_start_i(pass_start), .pass_t_i(pass_t), .pass_s_i(pass_s), .pass_done_o(pass_done),
    .oy_o(oy), .out_rows_done_o(out_rows_done), .in_rows_loaded_i(in_rows_loaded),
    .b_rows_loaded_i(b_rows_loaded), .out_rows_stored_i(out_rows_stored),
    .lb_raddr_o(lb_raddr), .lb_rdata_i(lb_rdata), .bb_raddr_o(bb_raddr), .bb_rdata_i(bb_rdata),
    .wb_raddr_o(wb_raddr), .wb_rdata_i(wb_rdata), .cb_raddr_o(cb_raddr), .cb_rdata_i(cb_rdata),
    .ob_we_o(ob_we), .ob_waddr_o(ob_waddr), .ob_wdata_o(ob_wdata), .ob_wstrb_o(ob_wstrb)
  );

  bhpe_eng_store #(.ObDepth(ObDepth), .AddrW(AddrW)) u_store (
    .clk_i, .rst_ni, .hdr_i(desc.hdr),
    .pass_start_i(pass_start), .pass_ox0_i(pass_ox0), .pass_owt_i(pass_owt), .pass_b0_i(pass_b0),
    .pass_busy_o(st_pass_busy), .out_rows_done_i(out_rows_done), .out_rows_stored_o(out_rows_stored),
    .ob_raddr_o(ob_raddr), .ob_rdata_i(ob_rdata),
    .req_valid_o(wq_valid), .req_ready_i(wq_ready), .req_addr_o(wq_addr), .req_words_o(wq_words),
    .wd_valid_o(wd_valid), .wd_ready_i(wd_ready), .wd_data_o(wd_data), .wd_strb_o(wd_strb),
    .wr_done_i(wr_done)
  );
endmodule
`endif  // BHPE_ENGINE_SV
