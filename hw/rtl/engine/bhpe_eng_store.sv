`ifndef BHPE_PKG_SV
`include "bhpe_pkg.sv"
`endif
`ifndef BHPE_ENG_PKG_SV
`include "engine/bhpe_eng_pkg.sv"
`endif
`ifndef BHPE_ENG_STORE_SV
`define BHPE_ENG_STORE_SV

// Store of the layer-sequential engine: finished output rows from the output buffer (2 slots) to DRAM through
// the write master (bhpe_eng_axi_wr), following the engine contract's store rule:
//
// Output row oy of the pass (strip ox0 .. ox0 + owt_s - 1, tile t) is written once compute reports it complete
// (out_rows_done_i > oy). For every pixel ox of the strip the tile's bytes [b0, b1) of the pixel, b0 = t * ct *
// ew_out / 8 (pass_b0_i), b1 = min(b0 + ct * ew_out / 8, cw_out * 8), go to out_addr + (oy * row_stride + ox *
// out_pix_stride) * 8 + b0, row_stride = out_row_stride, or ow * out_pix_stride when that is 0 (rounded down to
// the word, byte strobes for the partial first and last words), read
// from output-buffer words (oy mod 2) * ObDepth/2 + (ox - ox0) * cw_out + b0/8 ...
// "Row mode": when the tile is the whole pixel and the strip the whole row (n_ct == 1, n_strips == 1,
// out_pix_stride == cw_out and ct * ew_out / 8 >= cw_out * 8) the row is one request of ow * cw_out words (the
// write master cuts it into bursts of <= 256 beats at 4 KiB boundaries); otherwise one request (one burst) a pixel.
// out_rows_stored_o counts the rows whose every write response is back (reset by pass_start_i); compute writes
// row oy + 2 into the slot of row oy only after that. pass_busy_o until all oh rows are stored.
//
// Cycle costs (for the cycle model; measured with sim/engine_harness.cpp, no stalls, L = DRAM latency, one beat a
// cycle): the store is ready 4 cycles after pass_start_i. A row whose out_rows_done_i rises in cycle c has its first
// request taken in c (the write master's AW valid in c + 2) and its output-buffer reads start in c; the W beats go
// back to back from c + 2 (one request a cycle in pixel mode, bursts of <= 256 beats in row mode); the row
// counts as stored the cycle after the write response of its last burst, L cycles after its last W beat. So the
// pass ends (pass_busy_o low) L + (words of the last row) + 3 cycles after compute's pass_done_o (measured).
module bhpe_eng_store #(
  parameter int unsigned ObDepth = 2048,
  parameter int unsigned AddrW   = 40,
  localparam int unsigned ObAW   = bhpe_pkg::clog2_min1(ObDepth)
) (
  input  logic               clk_i,
  input  logic               rst_ni,
  input  bhpe_eng_pkg::hdr_t hdr_i,
  input  logic               pass_start_i,
  input  logic [15:0]        pass_ox0_i,
  input  logic [15:0]        pass_owt_i,
  input  logic [31:0]        pass_b0_i,
  output logic               pass_busy_o,
  input  logic [15:0]        out_rows_done_i,
  output logic [15:0]        out_rows_stored_o,
  // output buffer read port (data the cycle after the address)
  output logic [ObAW-1:0]    ob_raddr_o,
  input  logic [63:0]        ob_rdata_i,
  // write master
  output logic               req_valid_o,
  input  logic               req_ready_i,
  output logic [AddrW-1:0]   req_addr_o,
  output logic [31:0]        req_words_o,
  output logic               wd_valid_o,
  input  logic               wd_ready_i,
  output logic [63:0]        wd_data_o,
  output logic [7:0]         wd_strb_o,
  input  logic               wr_done_i
);
  /* verilator lint_off UNUSEDSIGNAL */
  bhpe_eng_pkg::hdr_t h;
  /* verilator lint_on UNUSEDSIGNAL */
  assign h = hdr_i;

  // ---- pass set-up ------------------------------------------------------------------------------------
  typedef enum logic [1:0] {SIdle, SSetup1, SSetup2, SRun} sstate_e;
  sstate_e sstate_q;

  logic [15:0]      ox0_q, owt_q;
  logic [31:0]      b0_q, b1_q, tile_bytes, pix_bytes_all;
  logic             row_mode_q;
  logic [31:0]      unit_words_q, units_q, wfirst_q;
  logic [7:0]       strb_first_q, strb_last_q;
  logic [AddrW-1:0] row_stride_q, unit_stride_q, row0_q;
  logic             running, first_q;

  assign tile_bytes    = (32'(h.ct) << h.lg_ew_out) >> 3;
  assign pix_bytes_all = {13'd0, h.cw_out, 3'b000};
  assign running       = (sstate_q == SRun);

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      sstate_q      <= SIdle;
      ox0_q         <= '0;
      owt_q         <= '0;
      b0_q          <= '0;
      b1_q          <= '0;
      row_mode_q    <= 1'b0;
      unit_words_q  <= '0;
      units_q       <= '0;
      wfirst_q      <= '0;
      strb_first_q  <= '0;
      strb_last_q   <= '0;
      row_stride_q  <= '0;
      unit_stride_q <= '0;
      row0_q        <= '0;
    end else begin
      unique case (sstate_q)
        SIdle: begin
          if (pass_start_i) begin
            ox0_q    <= pass_ox0_i;
            owt_q    <= pass_owt_i;
            b0_q     <= pass_b0_i;
            sstate_q <= SSetup1;
          end
        end
        SSetup1: begin
          b1_q         <= (b0_q + tile_bytes < pix_bytes_all) ? b0_q + tile_bytes : pix_bytes_all;
          row_mode_q   <= (h.n_ct == 16'd1) && (h.n_strips == 16'd1) && (h.out_pix_stride == h.cw_out) &&
                          (tile_bytes >= pix_bytes_all);
          row_stride_q <= AddrW'({(h.out_row_stride != '0) ? h.out_row_stride
                                                           : 32'(h.ow) * 32'(h.out_pix_stride), 3'b000});
          row0_q       <= AddrW'(h.out_addr) + AddrW'({32'(ox0_q) * 32'(h.out_pix_stride), 3'b000});
          sstate_q     <= SSetup2;
        end
        SSetup2: begin
          wfirst_q      <= b0_q >> 3;
          strb_first_q  <= 8'hff << b0_q[2:0];
          strb_last_q   <= 8'hff >> (3'd7 - 3'(b1_q - 32'd1));
          unit_words_q  <= row_mode_q ? 32'(owt_q) * 32'(h.cw_out) : ((b1_q - 32'd1) >> 3) - (b0_q >> 3) + 32'd1;
          units_q       <= row_mode_q ? 32'd1 : 32'(owt_q);
          unit_stride_q <= AddrW'({h.out_pix_stride, 3'b000});
          row0_q        <= row0_q + AddrW'({b0_q[31:3], 3'b000});
          sstate_q      <= SRun;
        end
        SRun: begin
          if (!pass_busy_o) sstate_q <= SIdle;
        end
        default: sstate_q <= SIdle;
      endcase
    end
  end

  always_ff @(posedge clk_i) begin
    if (!rst_ni) first_q <= 1'b0;
    else         first_q <= (sstate_q == SSetup2);
  end

  // ---- requests -----------------------------------------------------------------------------------------
  logic [15:0]      oyr_q;
  logic [31:0]      ur_q;
  logic [AddrW-1:0] rrow_q, runit_q;
  logic             r_can, r_fire, r_unit_last;

  assign r_can       = running & ~first_q & (oyr_q < h.oh) & (oyr_q < out_rows_done_i);
  assign r_fire      = r_can & req_ready_i;
  assign r_unit_last = (ur_q + 32'd1 == units_q);
  assign req_valid_o = r_can;
  assign req_addr_o  = runit_q;
  assign req_words_o = unit_words_q;

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      oyr_q   <= '0;
      ur_q    <= '0;
      rrow_q  <= '0;
      runit_q <= '0;
    end else if (first_q) begin
      oyr_q   <= '0;
      ur_q    <= '0;
      rrow_q  <= row0_q;
      runit_q <= row0_q;
    end else if (r_fire) begin
      if (r_unit_last) begin
        oyr_q   <= oyr_q + 16'd1;
        ur_q    <= '0;
        rrow_q  <= rrow_q + row_stride_q;
        runit_q <= rrow_q + row_stride_q;
      end else begin
        ur_q    <= ur_q + 32'd1;
        runit_q <= runit_q + unit_stride_q;
      end
    end
  end

  // ---- data: output buffer -> FIFO -> write master --------------------------------------------------------
  localparam int unsigned FifoDepth = 4;
  logic [15:0] oyd_q;
  logic [31:0] ud_q, wi_q, ubase_q;
  logic [2:0]  occ_q;
  logic        d_can, d_word_last, d_unit_last, rd_q, pop;
  logic [7:0]  strb, rd_strb_q;
  logic [31:0] slot_next;

  assign d_can       = running & ~first_q & (oyd_q < h.oh) & (oyd_q < out_rows_done_i) &
                       (occ_q < 3'(FifoDepth));
  assign d_word_last = (wi_q + 32'd1 == unit_words_q);
  assign d_unit_last = (ud_q + 32'd1 == units_q);
  assign slot_next   = (oyd_q[0] ? 32'd0 : 32'(ObDepth / 2)) + wfirst_q;
  assign ob_raddr_o  = ObAW'(ubase_q + wi_q);
  always_comb begin
    strb = 8'hff;
    if (wi_q == 32'd0) strb = strb & strb_first_q;
    if (d_word_last)   strb = strb & strb_last_q;
  end

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      oyd_q     <= '0;
      ud_q      <= '0;
      wi_q      <= '0;
      ubase_q   <= '0;
      rd_q      <= 1'b0;
      rd_strb_q <= '0;
    end else begin
      rd_q      <= d_can;
      rd_strb_q <= strb;
      if (first_q) begin
        oyd_q   <= '0;
        ud_q    <= '0;
        wi_q    <= '0;
        ubase_q <= wfirst_q;
      end else if (d_can) begin
        if (d_word_last) begin
          wi_q <= '0;
          if (d_unit_last) begin
            ud_q    <= '0;
            oyd_q   <= oyd_q + 16'd1;
            ubase_q <= slot_next;
          end else begin
            ud_q    <= ud_q + 32'd1;
            ubase_q <= ubase_q + 32'(h.cw_out);
          end
        end else begin
          wi_q <= wi_q + 32'd1;
        end
      end
    end
  end

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      occ_q <= '0;
    end else begin
      occ_q <= occ_q + 3'(d_can) - 3'(pop);
    end
  end

  logic        f_ready;
  logic [71:0] f_out;
  assign pop = wd_valid_o & wd_ready_i;
  bhpe_fifo #(.Width(72), .Depth(FifoDepth)) u_wfifo (
    .clk_i, .rst_ni,
    .in_tdata({rd_strb_q, ob_rdata_i}), .in_tvalid(rd_q), .in_tready(f_ready),
    .out_tdata(f_out), .out_tvalid(wd_valid_o), .out_tready(wd_ready_i)
  );
  assign wd_data_o = f_out[63:0];
  assign wd_strb_o = f_out[71:64];

  // ---- rows stored: write responses -------------------------------------------------------------------------
  logic [31:0] dcnt_q;
  logic [15:0] stored_q;
  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      dcnt_q   <= '0;
      stored_q <= '0;
    end else if (pass_start_i) begin
      dcnt_q   <= '0;
      stored_q <= '0;
    end else if (wr_done_i) begin
      if (dcnt_q + 32'd1 == units_q) begin
        dcnt_q   <= '0;
        stored_q <= stored_q + 16'd1;
      end else begin
        dcnt_q <= dcnt_q + 32'd1;
      end
    end
  end
  assign out_rows_stored_o = stored_q;
  assign pass_busy_o = (sstate_q == SSetup1) | (sstate_q == SSetup2) | first_q | (running & (stored_q != h.oh));

`ifndef SYNTHESIS
  fifo_no_overflow : assert property (@(posedge clk_i) disable iff (!rst_ni) rd_q |-> f_ready)
    else $error("%m: output FIFO overflow");
`endif
  logic unused_f_ready;
  assign unused_f_ready = f_ready;
endmodule
`endif  // BHPE_ENG_STORE_SV
