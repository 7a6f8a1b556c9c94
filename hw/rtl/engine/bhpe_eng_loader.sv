`ifndef BHPE_PKG_SV
`include "bhpe_pkg.sv"
`endif
`ifndef BHPE_ENG_PKG_SV
`include "engine/bhpe_eng_pkg.sv"
`endif
`ifndef BHPE_ENG_LOADER_SV
`define BHPE_ENG_LOADER_SV

// Loader of the layer-sequential engine: DRAM -> on-chip buffers, through four clients of the read master
// (bhpe_eng_axi_rd). It follows the row/slot rules of the engine contract exactly (docs/engine.md, "Execution
// order"; the compute unit implements the other side):
//
// - constants (const_start_i): n_cols * ng constant-buffer words, PE/2 DRAM words each (lane 0 in the low half
//   of the first word), from c_addr, one request; const_busy_o until the last word is written.
// - weights (wt_start_i, wt_addr_i = w_addr + t * wtile_words * PE * 8): wtile_words weight-buffer words of PE
//   DRAM words each (lane 0 first), one request, from word 0 (wt_half_i: from word WbDepth/2, the control's double
//   buffering); wt_busy_o until the last word is written.
// - a pass (pass_start_i, strip ox0 / width owt_s): the input rows y = 0 .. y_end-1, y_end = min(h, (oh-1)*stride
//   - pad + kh), in order, row y into line-buffer slot y mod r at (x - x0) * cw_in + cw for the pixels x0 .. x0 +
//   iwt - 1 inside [0, w), x0 = ox0 * stride - pad_x (pad: the top padding, pad_x: the left one); row y is
//   requested only when y < oy_i * stride - pad + r (the compute unit is past the rows that read the row it
//   replaces). One request a row when the input pixels are contiguous in DRAM
//   (in_pix_stride == cw_in), else one request a pixel. in_rows_loaded_o counts the rows whose last word is in.
//   With has_b, the b rows oy = 0 .. oh-1 of the strip likewise into b slot oy mod 2 (words (oy mod 2) *
//   BbDepth/2 + (ox - ox0) * cw_b + cw), requested only when oy < oy_i + 2; b_rows_loaded_o counts them.
//   Input rows are requested as soon as the slots allow, so they load ahead of compute, overlapping it.
//   pass_busy_o until every row of the pass is in.
//
// Cycle costs (for the cycle model, compile/engine/cycles.py; measured with sim/engine_harness.cpp, no stalls,
// L = DRAM latency, one beat a cycle): the first input-row request of a pass is taken 5 cycles after pass_start_i
// (3 set-up cycles computing the strip's addresses, 1 initialising the counters); the read master issues its AR 2
// cycles after taking a request, the first beat comes L cycles later, and a row counts as loaded (in_rows_loaded_o)
// the cycle after its last beat. Requests go out one a cycle (a contiguous row is one request, a view's row one a
// pixel); the data streams into the buffers at the DRAM's rate, never stalled by the loader. Constants and weights
// are one request each: L + 4 + their beats from the control's start to its seeing them loaded.
// in_rows_loaded_o / b_rows_loaded_o are 0 from the cycle after pass_start_i.
module bhpe_eng_loader #(
  parameter int unsigned PE      = 16,
  parameter int unsigned LbDepth = 4096,
  parameter int unsigned WbDepth = 1024,
  parameter int unsigned CbDepth = 512,
  parameter int unsigned BbDepth = 1024,
  parameter int unsigned AddrW   = 40,
  localparam int unsigned LbAW   = bhpe_pkg::clog2_min1(LbDepth),
  localparam int unsigned WbAW   = bhpe_pkg::clog2_min1(WbDepth),
  localparam int unsigned CbAW   = bhpe_pkg::clog2_min1(CbDepth),
  localparam int unsigned BbAW   = bhpe_pkg::clog2_min1(BbDepth)
) (
  input  logic                     clk_i,
  input  logic                     rst_ni,
  input  bhpe_eng_pkg::hdr_t       hdr_i,
  // commands from the control
  input  logic                     const_start_i,
  output logic                     const_busy_o,
  input  logic                     wt_start_i,
  input  logic [AddrW-1:0]         wt_addr_i,
  input  logic                     wt_half_i,      // write the tile into the upper half of the weight buffer
  input  logic                     wt_bg_i,        // a background load (chunked; see below)
  output logic                     wt_busy_o,
  input  logic                     pass_start_i,
  input  logic [15:0]              pass_ox0_i,
  input  logic [15:0]              pass_owt_i,
  output logic                     pass_busy_o,
  // compute's progress and the loader's
  input  logic [15:0]              oy_i,
  output logic [15:0]              in_rows_loaded_o,
  output logic [15:0]              b_rows_loaded_o,
  // read-master clients: 0 constants, 1 weights, 2 b rows, 3 input rows
  output logic [3:0]               req_valid_o,
  input  logic [3:0]               req_ready_i,
  output logic [3:0][AddrW-1:0]    req_addr_o,
  output logic [3:0][31:0]         req_words_o,
  input  logic [3:0]               rvalid_i,
  input  logic [63:0]              rdata_i,
  // buffer write ports
  output logic                     lb_we_o,
  output logic [LbAW-1:0]          lb_waddr_o,
  output logic [63:0]              lb_wdata_o,
  output logic                     bb_we_o,
  output logic [BbAW-1:0]          bb_waddr_o,
  output logic [63:0]              bb_wdata_o,
  output logic                     wb_we_o,
  output logic [WbAW-1:0]          wb_waddr_o,
  output logic [PE*64-1:0]         wb_wdata_o,
  output logic                     cb_we_o,
  output logic [CbAW-1:0]          cb_waddr_o,
  output logic [PE*32-1:0]         cb_wdata_o
);
  localparam int unsigned CLanes = PE / 2;
  localparam int unsigned LaneW  = bhpe_pkg::clog2_min1(PE);

  // the loader reads only some of the descriptor's fields
  /* verilator lint_off UNUSEDSIGNAL */
  bhpe_eng_pkg::hdr_t h;
  /* verilator lint_on UNUSEDSIGNAL */
  assign h = hdr_i;

  // =====================================================================================================
  // constants
  // =====================================================================================================
  logic        c_pend_q;
  logic [31:0] c_words_q;   // buffer words to write
  logic [31:0] c_word_q;    // buffer words written
  logic [LaneW-1:0] c_lane_q;
  logic [(CLanes > 1 ? CLanes - 1 : 1)*64-1:0] c_buf_q;
  logic        c_beat, c_lane_last;

  assign c_beat      = rvalid_i[0];
  assign c_lane_last = (c_lane_q == LaneW'(CLanes - 1));
  assign const_busy_o = c_pend_q | (c_word_q != c_words_q);

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      c_pend_q  <= 1'b0;
      c_words_q <= '0;
      c_word_q  <= '0;
      c_lane_q  <= '0;
      c_buf_q   <= '0;
    end else begin
      if (const_start_i) begin
        c_words_q <= 32'(h.n_cols) * 32'(h.ng);
        c_word_q  <= '0;
        c_lane_q  <= '0;
        c_pend_q  <= (h.n_cols != 16'd0) && (h.ng != 16'd0);
      end else if (req_ready_i[0]) begin
        c_pend_q <= 1'b0;
      end
      if (c_beat) begin
        if (c_lane_last) begin
          c_lane_q <= '0;
          c_word_q <= c_word_q + 32'd1;
        end else begin
          c_lane_q <= c_lane_q + LaneW'(1);
          c_buf_q[c_lane_q*64 +: 64] <= rdata_i;
        end
      end
    end
  end
  assign req_valid_o[0] = c_pend_q;
  assign req_addr_o[0]  = AddrW'(h.c_addr);
  assign req_words_o[0] = c_words_q * 32'(CLanes);
  assign cb_we_o        = c_beat & c_lane_last;
  assign cb_waddr_o     = CbAW'(c_word_q);
  if (CLanes > 1) begin : g_cwide
    assign cb_wdata_o = {rdata_i, c_buf_q[(CLanes-1)*64-1:0]};
  end else begin : g_cone
    assign cb_wdata_o = rdata_i;
  end

  // =====================================================================================================
  // weights
  // =====================================================================================================
  // A load in the background (wt_bg_i: the next tile's, while compute runs) goes in chunks of BgChunk buffer
  // words, one chunk outstanding at a time, so an input or b row never waits behind more than one chunk's beats;
  // a foreground load is one request.
  localparam int unsigned BgChunk = 4;
  logic             w_pend_q, w_bg_q;
  logic [AddrW-1:0] w_addr_q;
  logic [15:0]      w_word_q, w_req_q, w_left, w_chunk;
  logic             w_half_q;
  logic [LaneW-1:0] w_lane_q;
  logic [(PE > 1 ? PE - 1 : 1)*64-1:0] w_buf_q;
  logic             w_beat, w_lane_last;

  assign w_beat      = rvalid_i[1];
  assign w_lane_last = (w_lane_q == LaneW'(PE - 1));
  assign wt_busy_o   = w_pend_q | (w_word_q != h.wtile_words);
  assign w_left      = h.wtile_words - w_req_q;
  assign w_chunk     = (w_bg_q && w_left > 16'(BgChunk)) ? 16'(BgChunk) : w_left;

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      w_pend_q <= 1'b0;
      w_bg_q   <= 1'b0;
      w_addr_q <= '0;
      w_word_q <= '0;
      w_req_q  <= '0;
      w_half_q <= 1'b0;
      w_lane_q <= '0;
      w_buf_q  <= '0;
    end else begin
      if (wt_start_i) begin
        w_addr_q <= wt_addr_i;
        w_half_q <= wt_half_i;
        w_bg_q   <= wt_bg_i;
        w_word_q <= '0;
        w_req_q  <= '0;
        w_lane_q <= '0;
        w_pend_q <= (h.wtile_words != 16'd0);
      end else if (w_pend_q && req_ready_i[1]) begin
        w_pend_q <= 1'b0;
        w_req_q  <= w_req_q + w_chunk;
        w_addr_q <= w_addr_q + AddrW'({32'(w_chunk) * 32'(PE), 3'b000});
        if (w_chunk == w_left) w_bg_q <= 1'b0;  // the last chunk: the load is all requested
      end else if (w_bg_q && !w_pend_q && w_word_q == w_req_q) begin
        w_pend_q <= 1'b1;  // the next chunk of a background load, once the previous one is in
      end
      if (w_beat) begin
        if (w_lane_last) begin
          w_lane_q <= '0;
          w_word_q <= w_word_q + 16'd1;
        end else begin
          w_lane_q <= w_lane_q + LaneW'(1);
          w_buf_q[w_lane_q*64 +: 64] <= rdata_i;
        end
      end
    end
  end
  assign req_valid_o[1] = w_pend_q;
  assign req_addr_o[1]  = w_addr_q;
  assign req_words_o[1] = 32'(w_chunk) * 32'(PE);
  assign wb_we_o        = w_beat & w_lane_last;
  assign wb_waddr_o     = WbAW'(32'(w_word_q) + (w_half_q ? 32'(WbDepth / 2) : 32'd0));
  if (PE > 1) begin : g_wwide
    assign wb_wdata_o = {rdata_i, w_buf_q[(PE-1)*64-1:0]};
  end else begin : g_wone
    assign wb_wdata_o = rdata_i;
  end

  // =====================================================================================================
  // a pass: set-up (3 cycles of address arithmetic), then the input and b rows
  // =====================================================================================================
  typedef enum logic [2:0] {PIdle, PSetup1, PSetup2, PSetup3, PRun} pstate_e;
  pstate_e pstate_q;

  logic [15:0]      ox0_q, owt_q;
  logic [31:0]      x0_q;            // signed: first input column of the strip
  logic [31:0]      y_end_q;
  logic [31:0]      xs_q, npix_q, dst0_q;
  logic [31:0]      in_row_words_q, dst_off_q, b_row_words_q;
  logic [AddrW-1:0] in_row_stride_q, b_row_stride_q, in_pix_bytes_q, b_pix_bytes_q;
  logic [AddrW-1:0] in_row0_q, b_row0_q;
  logic             in_contig, b_contig, running;

  assign in_contig = (h.in_pix_stride == h.cw_in);
  assign b_contig  = (h.b_pix_stride == h.cw_b);
  assign running   = (pstate_q == PRun);

  logic [31:0] x0_c, xe_c, yend_c;
  always_comb begin
    x0_c   = 32'(ox0_q) * 32'(h.stride) - 32'(h.pad_x);
    yend_c = 32'(h.oh - 16'd1) * 32'(h.stride) + 32'(h.kh) - 32'(h.pad);
    if ($signed(yend_c) > $signed(32'(h.h))) yend_c = 32'(h.h);
    xe_c = x0_q + 32'(h.iwt);
    if ($signed(xe_c) > $signed(32'(h.w))) xe_c = 32'(h.w);
  end

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      pstate_q        <= PIdle;
      ox0_q           <= '0;
      owt_q           <= '0;
      x0_q            <= '0;
      y_end_q         <= '0;
      xs_q            <= '0;
      npix_q          <= '0;
      dst0_q          <= '0;
      in_row_words_q  <= '0;
      dst_off_q       <= '0;
      b_row_words_q   <= '0;
      in_row_stride_q <= '0;
      b_row_stride_q  <= '0;
      in_pix_bytes_q  <= '0;
      b_pix_bytes_q   <= '0;
      in_row0_q       <= '0;
      b_row0_q        <= '0;
    end else begin
      unique case (pstate_q)
        PIdle: begin
          if (pass_start_i) begin
            ox0_q    <= pass_ox0_i;
            owt_q    <= pass_owt_i;
            pstate_q <= PSetup1;
          end
        end
        PSetup1: begin
          x0_q            <= x0_c;
          y_end_q         <= yend_c;
          in_pix_bytes_q  <= AddrW'({h.in_pix_stride, 3'b000});
          b_pix_bytes_q   <= AddrW'({h.b_pix_stride, 3'b000});
          in_row_stride_q <= AddrW'({32'(h.w) * 32'(h.in_pix_stride), 3'b000});
          b_row_stride_q  <= AddrW'({32'(h.ow) * 32'(h.b_pix_stride), 3'b000});
          b_row0_q        <= AddrW'(h.b_addr) + AddrW'({32'(ox0_q) * 32'(h.b_pix_stride), 3'b000});
          b_row_words_q   <= 32'(owt_q) * 32'(h.cw_b);
          pstate_q        <= PSetup2;
        end
        PSetup2: begin
          xs_q     <= $signed(x0_q) < 0 ? 32'd0 : x0_q;
          npix_q   <= xe_c - ($signed(x0_q) < 0 ? 32'd0 : x0_q);
          dst0_q   <= ($signed(x0_q) < 0 ? 32'd0 : x0_q) - x0_q;
          pstate_q <= PSetup3;
        end
        PSetup3: begin
          in_row_words_q <= npix_q * 32'(h.cw_in);
          dst_off_q      <= dst0_q * 32'(h.cw_in);
          in_row0_q      <= AddrW'(h.in_addr) + AddrW'({xs_q * 32'(h.in_pix_stride), 3'b000});
          pstate_q       <= PRun;
        end
        PRun: begin
          if (!pass_busy_o) pstate_q <= PIdle;
        end
        default: pstate_q <= PIdle;
      endcase
    end
  end

  // the first PRun cycle (setup_done_q low) initialises the issuers and receivers from the set-up registers
  logic setup_done_q;
  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      setup_done_q <= 1'b0;
    end else begin
      setup_done_q <= running;
      if (pass_start_i) setup_done_q <= 1'b0;
    end
  end

  // ---- input rows: requests ---------------------------------------------------------------------------
  logic [31:0]      y_req_q, ipix_q;
  logic [AddrW-1:0] irow_addr_q, ipix_addr_q;
  logic             i_can, i_fire, ipix_last;

  // the row limit oy_i * stride + r, registered (oy_i only grows, so a limit one cycle late is safe): no multiply
  // on the request path
  logic [31:0] ylim_q;
  always_ff @(posedge clk_i) begin
    if (!rst_ni) ylim_q <= '0;
    else         ylim_q <= 32'(24'(oy_i) * 24'(h.stride)) + 32'(h.r);
  end
  assign i_can     = running & setup_done_q & (y_req_q < y_end_q) & ((y_req_q + 32'(h.pad)) < ylim_q);
  assign i_fire    = i_can & req_ready_i[3];
  assign ipix_last = (ipix_q + 32'd1 >= npix_q);
  assign req_valid_o[3] = i_can;
  assign req_addr_o[3]  = in_contig ? irow_addr_q : ipix_addr_q;
  assign req_words_o[3] = in_contig ? in_row_words_q : 32'(h.cw_in);

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      y_req_q     <= '0;
      ipix_q      <= '0;
      irow_addr_q <= '0;
      ipix_addr_q <= '0;
    end else if (running && !setup_done_q) begin
      y_req_q     <= '0;
      ipix_q      <= '0;
      irow_addr_q <= in_row0_q;
      ipix_addr_q <= in_row0_q;
    end else if (i_fire) begin
      if (in_contig || ipix_last) begin
        y_req_q     <= y_req_q + 32'd1;
        ipix_q      <= '0;
        irow_addr_q <= irow_addr_q + in_row_stride_q;
        ipix_addr_q <= irow_addr_q + in_row_stride_q;
      end else begin
        ipix_q      <= ipix_q + 32'd1;
        ipix_addr_q <= ipix_addr_q + in_pix_bytes_q;
      end
    end
  end

  // ---- input rows: data into the line buffer -----------------------------------------------------------
  logic [31:0] i_cnt_q, slot_q, slot_base_q, lb_ptr_q;
  logic [15:0] in_rows_q;
  logic        i_beat, i_row_end;
  logic [31:0] next_base;

  assign i_beat    = rvalid_i[3];
  assign i_row_end = (i_cnt_q + 32'd1 == in_row_words_q);
  assign next_base = (slot_q + 32'd1 == 32'(h.r)) ? 32'd0 : slot_base_q + 32'(h.slot_words);

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      i_cnt_q     <= '0;
      slot_q      <= '0;
      slot_base_q <= '0;
      lb_ptr_q    <= '0;
      in_rows_q   <= '0;
    end else if (pass_start_i) begin
      in_rows_q <= '0;
    end else if (running && !setup_done_q) begin
      i_cnt_q     <= '0;
      slot_q      <= '0;
      slot_base_q <= '0;
      lb_ptr_q    <= dst_off_q;
    end else if (i_beat) begin
      if (i_row_end) begin
        i_cnt_q     <= '0;
        in_rows_q   <= in_rows_q + 16'd1;
        slot_q      <= (slot_q + 32'd1 == 32'(h.r)) ? 32'd0 : slot_q + 32'd1;
        slot_base_q <= next_base;
        lb_ptr_q    <= next_base + dst_off_q;
      end else begin
        i_cnt_q  <= i_cnt_q + 32'd1;
        lb_ptr_q <= lb_ptr_q + 32'd1;
      end
    end
  end
  assign in_rows_loaded_o = in_rows_q;
  assign lb_we_o          = i_beat;
  assign lb_waddr_o       = LbAW'(lb_ptr_q);
  assign lb_wdata_o       = rdata_i;

  // ---- b rows: requests ------------------------------------------------------------------------------
  logic [31:0]      oyb_q, bpix_q;
  logic [AddrW-1:0] brow_addr_q, bpix_addr_q;
  logic             b_can, b_fire, bpix_last;

  assign b_can     = running & setup_done_q & h.has_b & (oyb_q < 32'(h.oh)) & (oyb_q < 32'(oy_i) + 32'd2);
  assign b_fire    = b_can & req_ready_i[2];
  assign bpix_last = (bpix_q + 32'd1 >= 32'(owt_q));
  assign req_valid_o[2] = b_can;
  assign req_addr_o[2]  = b_contig ? brow_addr_q : bpix_addr_q;
  assign req_words_o[2] = b_contig ? b_row_words_q : 32'(h.cw_b);

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      oyb_q       <= '0;
      bpix_q      <= '0;
      brow_addr_q <= '0;
      bpix_addr_q <= '0;
    end else if (running && !setup_done_q) begin
      oyb_q       <= '0;
      bpix_q      <= '0;
      brow_addr_q <= b_row0_q;
      bpix_addr_q <= b_row0_q;
    end else if (b_fire) begin
      if (b_contig || bpix_last) begin
        oyb_q       <= oyb_q + 32'd1;
        bpix_q      <= '0;
        brow_addr_q <= brow_addr_q + b_row_stride_q;
        bpix_addr_q <= brow_addr_q + b_row_stride_q;
      end else begin
        bpix_q      <= bpix_q + 32'd1;
        bpix_addr_q <= bpix_addr_q + b_pix_bytes_q;
      end
    end
  end

  // ---- b rows: data into the b buffer ------------------------------------------------------------------
  logic [31:0] b_cnt_q, bb_ptr_q;
  logic [15:0] b_rows_q;
  logic        b_beat, b_row_end;

  assign b_beat    = rvalid_i[2];
  assign b_row_end = (b_cnt_q + 32'd1 == b_row_words_q);

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      b_cnt_q  <= '0;
      bb_ptr_q <= '0;
      b_rows_q <= '0;
    end else if (pass_start_i) begin
      b_rows_q <= '0;
    end else if (running && !setup_done_q) begin
      b_cnt_q  <= '0;
      bb_ptr_q <= '0;
    end else if (b_beat) begin
      if (b_row_end) begin
        b_cnt_q  <= '0;
        b_rows_q <= b_rows_q + 16'd1;
        bb_ptr_q <= b_rows_q[0] ? 32'd0 : 32'(BbDepth / 2);
      end else begin
        b_cnt_q  <= b_cnt_q + 32'd1;
        bb_ptr_q <= bb_ptr_q + 32'd1;
      end
    end
  end
  assign b_rows_loaded_o = b_rows_q;
  assign bb_we_o         = b_beat;
  assign bb_waddr_o      = BbAW'(bb_ptr_q);
  assign bb_wdata_o      = rdata_i;

  // ---- pass progress -----------------------------------------------------------------------------------
  assign pass_busy_o = (pstate_q == PSetup1) | (pstate_q == PSetup2) | (pstate_q == PSetup3) |
                       (running & !setup_done_q) |
                       (running & ((32'(in_rows_q) != y_end_q) | (h.has_b & (b_rows_q != h.oh))));

`ifndef SYNTHESIS
  lb_in_range : assert property (@(posedge clk_i) disable iff (!rst_ni) lb_we_o |-> lb_ptr_q < 32'(LbDepth))
    else $error("%m: line-buffer write beyond LbDepth");
  bb_in_range : assert property (@(posedge clk_i) disable iff (!rst_ni) bb_we_o |-> b_cnt_q < 32'(BbDepth / 2))
    else $error("%m: b row longer than half the b buffer");
  wb_in_range : assert property (@(posedge clk_i) disable iff (!rst_ni)
      wb_we_o |-> 32'(w_word_q) < (w_half_q ? 32'(WbDepth / 2) : 32'(WbDepth)))
    else $error("%m: weight tile larger than WbDepth");
  cb_in_range : assert property (@(posedge clk_i) disable iff (!rst_ni) cb_we_o |-> c_word_q < 32'(CbDepth))
    else $error("%m: constants larger than CbDepth");
`endif
endmodule
`endif  // BHPE_ENG_LOADER_SV
