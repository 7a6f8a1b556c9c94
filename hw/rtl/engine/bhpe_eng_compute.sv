`ifndef BHPE_PKG_SV
`include "bhpe_pkg.sv"
`endif
`ifndef BHPE_ENG_PKG_SV
`include "engine/bhpe_eng_pkg.sv"
`endif
`ifndef BHPE_ENG_XNOR_ARRAY_SV
`include "engine/bhpe_eng_xnor_array.sv"
`endif
`ifndef BHPE_ENG_MAC_ARRAY_SV
`include "engine/bhpe_eng_mac_array.sv"
`endif
`ifndef BHPE_ENG_POOL_SV
`include "engine/bhpe_eng_pool.sv"
`endif
`ifndef BHPE_ENG_EPILOGUE_SV
`include "engine/bhpe_eng_epilogue.sv"
`endif
`ifndef BHPE_ENG_COMPUTE_SV
`define BHPE_ENG_COMPUTE_SV

// The engine's compute unit (docs/engine.md, "Units", "Data layout", "Semantics", "Execution order"; the row
// rules it shares with the loader and the store are below). For a pass
// (tile t, strip s) it walks the output rows oy, the pixels ox of the strip and the channel groups g of the
// tile, and for each group issues one step a cycle:
//   XNOR conv  steps (ky, kx, cw):     kh * kw * cw_in             (one input word x PE weight words)
//   MAC conv   steps (u, ky, kx, cw):  (PE / PEF) * kh * kw * cw_in (sub-pass u: weight lanes u*PEF ..)
//   pool       steps (ky, kx, j):      kh * kw * gw, gw = max(1, PE * ew_in / 64) (word j of the group's
//                                      channels; bipolar groups narrower than a word at bit g * PE of it)
// Each step presents a line-buffer address (slot (iy mod r), pixel ix - x0, word) and a weight-buffer address
// (((g_local * kh + ky) * kw + kx) * cw_in + cw); taps outside the input and channels beyond c_in are a mask,
// never a copy. The array (bhpe_eng_xnor_array, bhpe_eng_mac_array, bhpe_eng_pool) sums the group; its PE
// results go to a 2-entry group FIFO, from which the epilogue (bhpe_eng_epilogue, two groups interleaved) takes
// them while the array computes the next groups; the epilogue's result is packed (PE elements of ew_out bits,
// lanes >= cout as 0) into the output buffer, one word a cycle (only words < cw_out of the pixel; byte strobes
// for a group narrower than a word, up to the end of the word for the layer's last group, whose upper bits are
// padding).
//
// Row rules: the line buffer holds input row y in slot y mod r (words [(y mod r) * slot_words, + slot_words),
// pixel x at (x - x0) * cw_in, x0 = s * owt * stride - pad_x), b row oy in b slot oy mod 2 (pixel ox at
// (ox - s * owt) * cw_b), output row oy goes to output slot oy mod 2 (pixel ox at (ox - s * owt) * cw_out);
// output row oy starts (its first step is issued) when
//   in_rows_loaded_i >= min(y_end, oy * stride - pad + kh), y_end = min(h, (oh - 1) * stride - pad + kh),
//   b_rows_loaded_i > oy (has_b) and out_rows_stored_i + 2 > oy;
// out_rows_done_o counts the rows whose every group is in the output buffer; oy_o is the row being issued (it
// advances when the row's last step has been issued), or with has_b the oldest row not yet done (= out_rows_done_o:
// its groups may still read their b row), and 0 between passes; pass_done_o pulses when the last row is done.
//
// TIMING (cycles from the pass_start_i pulse to the pass_done_o pulse, with a loader and a store that never hold
// a row back; tests/rtl/engine_compute_tb.py checks these against the RTL):
//   G     = steps of a group:  XNOR kh*kw*cw_in;  MAC (PE/PEF)*kh*kw*cw_in;  pool kh*kw*max(1, PE*ew_in/64)
//   u     = epilogue micro-ops: n_ops, a Threshold counting 2
//   Elat  = a group's epilogue latency: 2*u + sb, sb = 2*max(0, ceil((nbw + 1)/2) - j) with a JoinAdd at
//           micro-op j, nbw = max(1, PE*ew_b/64) b words (0 without b)
//   E     = epilogue cycles a group (two groups interleaved): Elat / 2; 1 when n_ops = 0
//   W     = output words of a group: max(1, PE*ew_out/64)
//   L     = array latency: 3 (XNOR, pool), 4 (MAC)
//   C     = cycles a group = max(G, E, W, nbw, (G + L + 2) / 3)   (the last term: the array runs at most three
//           groups ahead of the epilogue's take)
//   N     = groups of the pass = oh * owt_s * ngt, owt_s = min(owt, ow - s*owt), ngt = min(ct/PE, ng - t*ct/PE)
//   array-bound (C = G):      Tpass = 3 + N*G + oh + X + min(G, Elat) + L + W + 3
//        X = 0 when r >= kh + stride; with a shorter line buffer (r < kh + stride: no slot to load the next
//        row's inputs into ahead) each row waits for the loader to bring its new input rows after oy_o advanced:
//        X = (oh - 1) * (that time: 1 cycle with a loader that delivers at once; the further wraps of a row's
//        first slot where stride > r, a cycle each, hide in it). Rows shorter than their groups' way out
//        (owt_s * ngt * G < min(G, Elat) + L + W + 7) also wait for their output slot (the store's 2 slots).
//   epilogue-bound (C = E > W, nbw, (G + L + 2)/3):
//                             Tpass = N*E + G + (G | 1) + L + W + 7      (N even)
//                             Tpass = N*E + E + G + L + W + 7            (N odd)
//   otherwise (W, nbw or the credit bound):  Tpass ~ 3 + N*C + min(G, Elat) + L + W + 4   (within 5 %)
//   Both exact formulas are the measured cycles of every bench case in its regime.
module bhpe_eng_compute #(
  parameter int unsigned PE      = 16,
  parameter int unsigned PEF     = 4,
  parameter int unsigned LbDepth = 4096,
  parameter int unsigned WbDepth = 1024,
  parameter int unsigned CbDepth = 512,
  parameter int unsigned BbDepth = 1024,
  parameter int unsigned ObDepth = 2048
) (
  input  logic                         clk_i,
  input  logic                         rst_ni,
  input  bhpe_eng_pkg::desc_t          desc_i,
  input  logic                         pass_start_i,
  input  logic [15:0]                  pass_t_i,
  input  logic [15:0]                  pass_s_i,
  output logic                         pass_done_o,
  output logic [15:0]                  oy_o,
  output logic [15:0]                  out_rows_done_o,
  input  logic [15:0]                  in_rows_loaded_i,
  input  logic [15:0]                  b_rows_loaded_i,
  input  logic [15:0]                  out_rows_stored_i,
  output logic [$clog2(LbDepth)-1:0]   lb_raddr_o,
  input  logic [63:0]                  lb_rdata_i,
  output logic [$clog2(BbDepth)-1:0]   bb_raddr_o,
  input  logic [63:0]                  bb_rdata_i,
  output logic [$clog2(WbDepth)-1:0]   wb_raddr_o,
  input  logic [PE*64-1:0]             wb_rdata_i,
  output logic [$clog2(CbDepth)-1:0]   cb_raddr_o,
  input  logic [PE*32-1:0]             cb_rdata_i,
  output logic                         ob_we_o,
  output logic [$clog2(ObDepth)-1:0]   ob_waddr_o,
  output logic [63:0]                  ob_wdata_o,
  output logic [7:0]                   ob_wstrb_o
);
  localparam int unsigned ValW = bhpe_eng_pkg::ValW;
  localparam int unsigned AccW = bhpe_eng_pkg::AccW;
  localparam int unsigned LgPe = $clog2(PE);
  localparam int unsigned LbAw = $clog2(LbDepth);
  localparam int unsigned WbAw = $clog2(WbDepth);
  localparam int unsigned BbAw = $clog2(BbDepth);
  localparam int unsigned ObAw = $clog2(ObDepth);
  localparam int unsigned NumU = PE / PEF;
  localparam int unsigned UW   = bhpe_pkg::clog2_min1(NumU);
  localparam int unsigned JW   = bhpe_pkg::clog2_min1(PE / 2);
  localparam int unsigned AW   = 24;  // internal address arithmetic (wider than every buffer's address)

  if (PE < 8 || (1 << LgPe) != PE) begin : gen_bad_pe
    $error("bhpe_eng_compute: PE must be a power of two, at least 8");
  end
  if (PEF == 0 || PE % PEF != 0) begin : gen_bad_pef
    $error("bhpe_eng_compute: PEF must divide PE");
  end
  if ((1 << ObAw) != ObDepth || (1 << BbAw) != BbDepth) begin : gen_bad_depth
    $error("bhpe_eng_compute: ObDepth and BbDepth must be powers of two (two slots of half the buffer)");
  end

  bhpe_eng_pkg::hdr_t hdr;
  assign hdr = desc_i.hdr;

  logic is_xnor, is_mac, is_pool, is_max;
  assign is_xnor = (hdr.mode == bhpe_eng_pkg::ModeXnorConv);
  assign is_mac  = (hdr.mode == bhpe_eng_pkg::ModeMacConv);
  assign is_max  = (hdr.mode == bhpe_eng_pkg::ModePoolMax);
  assign is_pool = is_max | (hdr.mode == bhpe_eng_pkg::ModePoolSum);

  // ---- pass set-up -------------------------------------------------------------------------------------
  typedef enum logic [2:0] {StIdle, StSetup1, StSetup2, StRow, StRun, StDrain} state_e;
  state_e st_q, st_d;

  logic [15:0]        t_q, s_q;
  logic [15:0]        gpt;                 // groups a tile
  logic [15:0]        ox0_q, g0_q, ylast_q, ngt_q, owt_s_q, y_end_q, gw;
  logic [AW-1:0]      pxstep_q, slot0a_q, sstepa_q, rwrapa_q;
  logic signed [17:0] x0_q;
  logic [15:0]        slot0;
  logic [15:0]        nwt;                 // words a tap (the inner counter's range)
  logic [UW-1:0]      ulast;

  assign gpt   = hdr.ct >> LgPe;
  assign slot0 = (hdr.pad == '0) ? 16'd0 : hdr.r - 16'(hdr.pad);
  // gw = max(1, PE * ew_in / 64) (bipolar groups narrower than a word share it)
  assign gw    = (hdr.lg_ew_in == 3'd0 && PE < 64) ? 16'd1 : 16'((32'(PE) << hdr.lg_ew_in) >> 6);
  assign nwt   = is_pool ? gw : hdr.cw_in;
  assign ulast = is_mac ? UW'(NumU - 1) : '0;

  logic [31:0] m_ox0, m_g0, m_ylast, m_pxstep, m_slot0a, m_sstepa, m_rwrapa;
  assign m_ox0    = s_q * hdr.owt;
  assign m_g0     = t_q * gpt;
  assign m_ylast  = (32'(hdr.oh) - 32'd1) * 32'(hdr.stride);
  assign m_pxstep = 32'(hdr.stride) * 32'(hdr.cw_in);
  assign m_slot0a = slot0 * hdr.slot_words;
  assign m_sstepa = 32'(hdr.stride) * 32'(hdr.slot_words);
  assign m_rwrapa = hdr.r * hdr.slot_words;

  logic signed [31:0] m_x0;
  logic signed [17:0] y_end_s;
  logic [15:0]        ow_left, ng_left;
  assign m_x0    = $signed(32'(ox0_q) * 32'(hdr.stride)) - 32'(hdr.pad_x);
  assign y_end_s = 18'(ylast_q) - 18'(hdr.pad) + 18'(hdr.kh);
  assign ow_left = hdr.ow - ox0_q;
  assign ng_left = hdr.ng - g0_q;

  always_ff @(posedge clk_i) begin
    if (st_q == StIdle && pass_start_i) begin
      t_q <= pass_t_i;
      s_q <= pass_s_i;
    end
    if (st_q == StSetup1) begin
      ox0_q    <= m_ox0[15:0];
      g0_q     <= m_g0[15:0];
      ylast_q  <= m_ylast[15:0];
      pxstep_q <= AW'(m_pxstep);
      slot0a_q <= AW'(m_slot0a);
      sstepa_q <= AW'(m_sstepa);
      rwrapa_q <= AW'(m_rwrapa);
    end
    if (st_q == StSetup2) begin
      x0_q     <= m_x0[17:0];
      owt_s_q  <= (ow_left < hdr.owt) ? ow_left : hdr.owt;
      ngt_q    <= (ng_left < gpt) ? ng_left : gpt;
      y_end_q  <= ($signed(y_end_s) < $signed({2'b0, hdr.h})) ? y_end_s[15:0] : hdr.h;
    end
  end

  // ---- step counters -----------------------------------------------------------------------------------
  logic [15:0]        oy_q, lx_q, gl_q, wc_q;
  logic [7:0]         ky_q, kx_q;
  logic [UW-1:0]      u_q;
  logic signed [17:0] iy0_q, iy_q, ix0_q, ix_q;
  logic [15:0]        slotb_q, slot_q;
  logic [AW-1:0]      slotba_q, slota_q, pxa_q, kxa_q, wa_q, wgb_q, obx_q, bbx_q;

  logic [15:0]        oy_d, lx_d, gl_d, wc_d;
  logic [7:0]         ky_d, kx_d;
  logic [UW-1:0]      u_d;
  logic signed [17:0] iy0_d, iy_d, ix0_d, ix_d;
  logic [15:0]        slotb_d, slot_d;
  logic [AW-1:0]      slotba_d, slota_d, pxa_d, kxa_d, wa_d, wgb_d, obx_d, bbx_d;

  logic wc_last, kx_last, ky_last, u_last, g_last, lx_last, oy_last;
  logic tap_end, grp_first, grp_end, px_end, row_end;
  assign wc_last   = (wc_q == nwt - 16'd1);
  assign kx_last   = (kx_q == hdr.kw - 8'd1);
  assign ky_last   = (ky_q == hdr.kh - 8'd1);
  assign u_last    = (u_q == ulast);
  assign g_last    = (gl_q == ngt_q - 16'd1);
  assign lx_last   = (lx_q == owt_s_q - 16'd1);
  assign oy_last   = (oy_q == hdr.oh - 16'd1);
  assign tap_end   = wc_last & kx_last & ky_last;
  assign grp_first = (wc_q == '0) & (kx_q == '0) & (ky_q == '0) & (u_q == '0);
  assign grp_end   = tap_end & u_last;
  assign px_end    = grp_end & g_last;
  assign row_end   = px_end & lx_last;

  // ---- flow: outstanding groups (issued, not yet taken by the epilogue), row start conditions ---------
  logic [1:0] outst_q;
  logic       epi_take, fire, row_ok;
  logic signed [17:0] need_s;
  logic [15:0]        need_in;
  assign need_s  = iy0_q + 18'(hdr.kh);
  assign need_in = ($signed(need_s) < $signed({2'b0, y_end_q})) ? need_s[15:0] : y_end_q;
  assign row_ok  = (slotb_q < hdr.r) && (in_rows_loaded_i >= need_in) && (!hdr.has_b || b_rows_loaded_i > oy_q) &&
                   (17'(out_rows_stored_i) + 17'd2 > 17'(oy_q));
  assign fire    = (st_q == StRun) && (!grp_first || outst_q != 2'd3);

  logic pass_last_w;  // the packer writes the pass's last word this cycle
  always_comb begin
    st_d = st_q;
    unique case (st_q)
      StIdle:   if (pass_start_i) st_d = StSetup1;
      StSetup1: st_d = StSetup2;
      StSetup2: st_d = StRow;
      StRow:    if (row_ok) st_d = StRun;
      StRun:    if (fire && row_end) st_d = oy_last ? StDrain : StRow;
      StDrain:  if (pass_last_w) st_d = StIdle;
      default:  st_d = StIdle;
    endcase
  end

  always_comb begin
    oy_d = oy_q; lx_d = lx_q; gl_d = gl_q; wc_d = wc_q; ky_d = ky_q; kx_d = kx_q; u_d = u_q;
    iy0_d = iy0_q; iy_d = iy_q; ix0_d = ix0_q; ix_d = ix_q;
    slotb_d = slotb_q; slot_d = slot_q; slotba_d = slotba_q; slota_d = slota_q;
    pxa_d = pxa_q; kxa_d = kxa_q; wa_d = wa_q; wgb_d = wgb_q; obx_d = obx_q; bbx_d = bbx_q;
    if (st_q == StSetup2) begin
      // row 0, pixel 0, group 0 of the pass
      oy_d = '0; lx_d = '0; gl_d = '0; wc_d = '0; ky_d = '0; kx_d = '0; u_d = '0;
      iy0_d = -18'(hdr.pad); iy_d = -18'(hdr.pad);
      ix0_d = m_x0[17:0];    ix_d = m_x0[17:0];
      slotb_d = slot0; slot_d = slot0; slotba_d = slot0a_q; slota_d = slot0a_q;
      pxa_d = '0; kxa_d = '0; wa_d = '0; wgb_d = '0; obx_d = '0; bbx_d = '0;
    end else if (st_q == StRow && slotb_q >= hdr.r) begin
      slotb_d  = slotb_q - hdr.r;
      slotba_d = slotba_q - rwrapa_q;
      slot_d   = slotb_d;
      slota_d  = slotba_d;
    end else if (fire) begin
      wa_d = wa_q + AW'(1);
      wc_d = wc_q + 16'd1;
      if (wc_last) begin
        wc_d  = '0;
        kx_d  = kx_q + 8'd1;
        kxa_d = kxa_q + AW'(hdr.cw_in);
        ix_d  = ix_q + 18'sd1;
        if (kx_last) begin
          kx_d  = '0;
          kxa_d = '0;
          ix_d  = ix0_q;
          ky_d  = ky_q + 8'd1;
          iy_d  = iy_q + 18'sd1;
          if (slot_q == hdr.r - 16'd1) begin
            slot_d  = '0;
            slota_d = '0;
          end else begin
            slot_d  = slot_q + 16'd1;
            slota_d = slota_q + AW'(hdr.slot_words);
          end
          if (ky_last) begin
            ky_d    = '0;
            iy_d    = iy0_q;
            slot_d  = slotb_q;
            slota_d = slotba_q;
            u_d     = u_q + UW'(1);
            if (!u_last) wa_d = wgb_q;  // the next sub-pass reads the group's weights again
            if (u_last) begin
              u_d   = '0;
              gl_d  = gl_q + 16'd1;
              wgb_d = wa_q + AW'(1);
              if (g_last) begin
                gl_d  = '0;
                wa_d  = '0;
                wgb_d = '0;
                lx_d  = lx_q + 16'd1;
                ix0_d = ix0_q + 18'(hdr.stride);
                ix_d  = ix0_q + 18'(hdr.stride);
                pxa_d = pxa_q + pxstep_q;
                obx_d = obx_q + AW'(hdr.cw_out);
                bbx_d = bbx_q + AW'(hdr.cw_b);
                if (lx_last) begin
                  lx_d  = '0;
                  ix0_d = x0_q;
                  ix_d  = x0_q;
                  pxa_d = '0;
                  obx_d = '0;
                  bbx_d = '0;
                  oy_d  = oy_q + 16'd1;
                  iy0_d = iy0_q + 18'(hdr.stride);
                  iy_d  = iy0_q + 18'(hdr.stride);
                  // the row's first slot moves on by stride (mod r: one wrap here, any further one in
                  // StRow, a cycle each, only where stride > r)
                  if (slotb_q + 16'(hdr.stride) >= hdr.r) begin
                    slotb_d  = slotb_q + 16'(hdr.stride) - hdr.r;
                    slotba_d = slotba_q + sstepa_q - rwrapa_q;
                  end else begin
                    slotb_d  = slotb_q + 16'(hdr.stride);
                    slotba_d = slotba_q + sstepa_q;
                  end
                  slot_d  = slotb_d;
                  slota_d = slotba_d;
                end
              end
            end
          end
        end
      end
    end
  end

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      st_q <= StIdle;
      oy_q <= '0;
    end else begin
      st_q <= st_d;
      oy_q <= (st_d == StIdle) ? '0 : oy_d;  // 0 between passes (the next pass's loader reads it)
    end
  end
  always_ff @(posedge clk_i) begin
    lx_q <= lx_d; gl_q <= gl_d; wc_q <= wc_d; ky_q <= ky_d; kx_q <= kx_d; u_q <= u_d;
    iy0_q <= iy0_d; iy_q <= iy_d; ix0_q <= ix0_d; ix_q <= ix_d;
    slotb_q <= slotb_d; slot_q <= slot_d; slotba_q <= slotba_d; slota_q <= slota_d;
    pxa_q <= pxa_d; kxa_q <= kxa_d; wa_q <= wa_d; wgb_q <= wgb_d; obx_q <= obx_d;
    bbx_q <= bbx_d;
  end

  // ---- addresses and the step's masks (cycle 0), registered for the array (cycle 1) -------------------
  logic [AW-1:0] lba;
  // pool: the group's channels start at bit (g * PE * ew_in) of the pixel: word gbit / 64, bit gbit mod 64
  logic [31:0] gbit;
  assign gbit       = ((32'(g0_q + gl_q)) << LgPe) << hdr.lg_ew_in;
  assign lba        = slota_q + pxa_q + kxa_q + (is_pool ? AW'(gbit[31:6]) : '0) + AW'(wc_q);
  assign lb_raddr_o = lba[LbAw-1:0];
  assign wb_raddr_o = wa_q[WbAw-1:0];

  logic        tap_ok;
  logic [63:0] xmask;
  logic [7:0]  emask;
  logic signed [31:0] rem_x, rem_e;
  assign tap_ok = ($signed(iy_q) >= 0) && ($signed(iy_q) < $signed({2'b0, hdr.h})) &&
                  ($signed(ix_q) >= 0) && ($signed(ix_q) < $signed({2'b0, hdr.w}));
  assign rem_x  = $signed(32'(hdr.c_in)) - $signed(32'(wc_q) << 6);
  assign rem_e  = $signed(32'(hdr.c_in)) - $signed(32'(wc_q) << (hdr.lg_ew_in == 3'd4 ? 2 : 3));
  always_comb begin
    for (int unsigned b = 0; b < 64; b++) xmask[b] = tap_ok && (rem_x > $signed(b));
    for (int unsigned e = 0; e < 8; e++)  emask[e] = tap_ok && (rem_e > $signed(e));
  end

  logic          v1_q, first1_q, last1_q, ok1_q;
  logic [63:0]   xmask1_q;
  logic [7:0]    emask1_q;
  logic [UW-1:0] u1_q;
  logic [JW-1:0] j1_q;
  logic [5:0]    off1_q;
  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      v1_q <= 1'b0;
    end else begin
      v1_q <= fire;
    end
  end
  always_ff @(posedge clk_i) begin
    if (fire) begin
      first1_q <= (wc_q == '0) & (kx_q == '0) & (ky_q == '0);
      last1_q  <= grp_end;
      ok1_q    <= tap_ok;
      xmask1_q <= xmask;
      emask1_q <= emask;
      u1_q     <= u_q;
      j1_q     <= JW'(wc_q);
      off1_q   <= gbit[5:0];
    end
  end

  // ---- the arrays --------------------------------------------------------------------------------------
  logic [PE*AccW-1:0] xnor_acc, mac_acc;
  logic [PE*ValW-1:0] pool_acc;
  logic               xnor_done, mac_done, pool_done;

  bhpe_eng_xnor_array #(.Pe(PE)) u_xnor (
    .clk_i, .rst_ni, .valid_i(v1_q & is_xnor), .first_i(first1_q), .last_i(last1_q), .x_i(lb_rdata_i),
    .mask_i(xmask1_q), .w_i(wb_rdata_i), .acc_o(xnor_acc), .done_o(xnor_done)
  );
  bhpe_eng_mac_array #(.Pe(PE), .Pef(PEF)) u_mac (
    .clk_i, .rst_ni, .valid_i(v1_q & is_mac), .first_i(first1_q), .last_i(last1_q),
    .wide_i(hdr.lg_ew_in == 3'd4), .signed_i(hdr.in_signed), .u_i(u1_q), .emask_i(emask1_q),
    .x_i(lb_rdata_i), .w_i(wb_rdata_i), .acc_o(mac_acc), .done_o(mac_done)
  );
  bhpe_eng_pool #(.Pe(PE)) u_pool (
    .clk_i, .rst_ni, .valid_i(v1_q & is_pool), .first_i(first1_q), .last_i(last1_q), .is_max_i(is_max),
    .signed_i(hdr.in_signed), .lg_ew_i(hdr.lg_ew_in), .tap_ok_i(ok1_q), .j_i(j1_q), .off_i(off1_q),
    .x_i(lb_rdata_i),
    .acc_o(pool_acc), .done_o(pool_done)
  );

  logic [PE*ValW-1:0] acc;
  logic               done;
  always_comb begin
    for (int unsigned p = 0; p < PE; p++) begin
      if (is_pool)     acc[p*ValW +: ValW] = pool_acc[p*ValW +: ValW];
      else if (is_mac) acc[p*ValW +: ValW] = ValW'($signed(mac_acc[p*AccW +: AccW]));
      else             acc[p*ValW +: ValW] = ValW'($signed(xnor_acc[p*AccW +: AccW]));
    end
  end
  assign done = is_pool ? pool_done : is_mac ? mac_done : xnor_done;

  // ---- group FIFO (array -> epilogue): 2 entries; a finished group waits in the accumulators (pend_q) while
  // both are full. At most 3 groups are issued and not yet taken by the epilogue (outst_q), so the next group's
  // first accumulation always finds the accumulators handed over. --------------------------------------------
  logic               pend_q, handover, grd_q;
  logic [1:0]         gcnt_q;
  logic [PE*ValW-1:0] grp_q [2];
  assign handover = (done | pend_q) & ((gcnt_q != 2'd2) | epi_take);
  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      pend_q  <= 1'b0;
      grd_q   <= 1'b0;
      gcnt_q  <= '0;
      outst_q <= '0;
    end else begin
      pend_q  <= (done | pend_q) & ~handover;
      grd_q   <= grd_q ^ epi_take;
      gcnt_q  <= gcnt_q + 2'(handover ? 1 : 0) - 2'(epi_take ? 1 : 0);
      outst_q <= outst_q + 2'((fire && grp_first) ? 1 : 0) - 2'(epi_take ? 1 : 0);
    end
  end
  always_ff @(posedge clk_i) begin
    if (handover) grp_q[grd_q ^ gcnt_q[0]] <= acc;
  end

  // the FIFO's stream into the epilogue keeps the valid/ready rules
  bhpe_stream_assert #(.DataW(PE*ValW)) u_grp_assert (
    .clk_i, .rst_ni, .tdata_i(grp_q[grd_q]), .tvalid_i(gcnt_q != '0), .tready_i(epi_take)
  );

  // ---- group metadata: pushed when a group's first step is issued; read by the epilogue (its group and
  // b pixel) and the packer (output words, row / pass ends). At most 7 groups between the two (3 before the
  // epilogue, 2 in its contexts, 1 in its output register, 1 being loaded). ---------------------------------
  typedef struct packed {
    logic [15:0]     g;
    logic [BbAw-1:0] bbase;
    logic [ObAw-1:0] obase;
    logic            row_last;
    logic            pass_last;
  } meta_t;
  meta_t      meta_q [8];
  meta_t      meta_in;
  logic [2:0] mwr_q, mepi_q, mpk_q;
  logic       pk_load;
  assign meta_in.g         = g0_q + gl_q;
  assign meta_in.bbase     = BbAw'(oy_q[0] ? BbDepth / 2 : 0) + BbAw'(bbx_q);
  assign meta_in.obase     = ObAw'(oy_q[0] ? ObDepth / 2 : 0) + ObAw'(obx_q);
  assign meta_in.row_last  = g_last & lx_last;
  assign meta_in.pass_last = g_last & lx_last & oy_last;
  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      mwr_q  <= '0;
      mepi_q <= '0;
      mpk_q  <= '0;
    end else begin
      if (fire && grp_first) mwr_q <= mwr_q + 3'd1;
      if (epi_take)          mepi_q <= mepi_q + 3'd1;
      if (pk_load)           mpk_q <= mpk_q + 3'd1;
    end
  end
  always_ff @(posedge clk_i) begin
    if (fire && grp_first) meta_q[mwr_q] <= meta_in;
  end

  // ---- epilogue ------------------------------------------------------------------------------------
  logic               epi_out_valid;
  logic [PE*ValW-1:0] epi_out;
  meta_t              meta_epi, meta_pk;
  assign meta_epi = meta_q[mepi_q];
  assign meta_pk  = meta_q[mpk_q];

  bhpe_eng_epilogue #(.Pe(PE), .CbDepth(CbDepth), .BbDepth(BbDepth)) u_epi (
    .clk_i, .rst_ni, .desc_i, .in_valid_i(gcnt_q != '0), .in_ready_o(epi_take), .in_val_i(grp_q[grd_q]),
    .in_g_i(meta_epi.g), .in_g_next_i(meta_q[mepi_q + 3'd1].g), .in_bbase_i(meta_epi.bbase), .cb_raddr_o,
    .cb_rdata_i, .bb_raddr_o, .bb_rdata_i,
    .out_valid_o(epi_out_valid), .out_ready_i(pk_load), .out_val_o(epi_out)
  );

  // ---- packer: the group's PE elements of ew_out bits into W words of the output buffer --------------
  localparam int unsigned PkW = PE * 32;
  logic [PkW-1:0] packed_d, pk_data_q;
  logic [15:0]    nwo;
  always_comb begin
    packed_d = '0;
    for (int unsigned p = 0; p < PE; p++) begin
      logic [31:0] v;  // the low ew_out <= 32 bits of the value are the element
      v = (32'(meta_pk.g) * PE + p < 32'(hdr.cout)) ? epi_out[p*ValW +: 32] : '0;
      unique case (hdr.lg_ew_out)
        3'd0:    packed_d[p]        = v[0];
        3'd3:    packed_d[p*8 +: 8]   = v[7:0];
        3'd4:    packed_d[p*16 +: 16] = v[15:0];
        default: packed_d[p*32 +: 32] = v[31:0];
      endcase
    end
    unique case (hdr.lg_ew_out)
      3'd0:    nwo = (PE >= 64) ? 16'(PE / 64) : 16'd1;
      3'd3:    nwo = 16'(PE / 8);
      3'd4:    nwo = 16'(PE / 4);
      default: nwo = 16'(PE / 2);
    endcase
  end

  logic        pk_busy_q, pk_last, pk_last_q;
  logic [15:0] pk_k_q, pk_g_q;
  logic [ObAw-1:0] pk_obase_q;
  logic        pk_row_last_q, pk_pass_last_q;
  // pk_last_q: the word written this cycle is the group's last (registered, off the epilogue's take path)
  assign pk_last = pk_busy_q && pk_last_q;
  assign pk_load = epi_out_valid && (!pk_busy_q || pk_last);
  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      pk_busy_q <= 1'b0;
      pk_k_q    <= '0;
      pk_last_q <= 1'b0;
    end else if (pk_load) begin
      pk_busy_q <= 1'b1;
      pk_k_q    <= '0;
      pk_last_q <= (nwo == 16'd1);
    end else if (pk_busy_q) begin
      pk_busy_q <= !pk_last;
      pk_k_q    <= pk_k_q + 16'd1;
      pk_last_q <= (pk_k_q + 16'd2 == nwo);
    end
  end
  always_ff @(posedge clk_i) begin
    if (pk_load) begin
      pk_data_q      <= packed_d;
      pk_g_q         <= meta_pk.g;
      pk_obase_q     <= meta_pk.obase;
      pk_row_last_q  <= meta_pk.row_last;
      pk_pass_last_q <= meta_pk.pass_last;
    end
  end

  // the group's first bit in the pixel: g * PE * ew_out; its word and (narrow groups) bit offset
  logic [31:0] pk_bit;
  logic [15:0] pk_word;
  logic [5:0]  pk_off;
  logic        narrow;
  logic [7:0]  nstrb;
  assign pk_bit  = (32'(pk_g_q) << LgPe) << hdr.lg_ew_out;
  assign pk_word = pk_bit[21:6] + pk_k_q;
  assign pk_off  = pk_bit[5:0];
  assign narrow  = (hdr.lg_ew_out == 3'd0) && (PE < 64);
  // a narrow group: PE / 8 bytes from byte off / 8 (to the end of the word for the layer's last group)
  always_comb begin
    for (int unsigned b = 0; b < 8; b++) begin
      nstrb[b] = (3'(b) >= pk_off[5:3]) &&
                 ((4'(b) < 4'(pk_off[5:3]) + 4'(PE / 8)) || (pk_g_q == hdr.ng - 16'd1));
    end
  end
  always_comb begin
    ob_we_o    = pk_busy_q && (pk_word < hdr.cw_out);
    ob_waddr_o = pk_obase_q + ObAw'(pk_word);
    if (narrow) begin
      ob_wdata_o = pk_data_q[63:0] << pk_off;
      ob_wstrb_o = nstrb;
    end else begin
      ob_wdata_o = pk_data_q[pk_k_q[$clog2(PkW/64)-1:0]*64 +: 64];
      ob_wstrb_o = 8'hFF;
    end
  end

  assign pass_last_w = pk_last & pk_pass_last_q;
  logic [15:0] rows_done_q;
  logic        pass_done_q;
  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      rows_done_q <= '0;
      pass_done_q <= 1'b0;
    end else begin
      if (st_q == StIdle && pass_start_i) rows_done_q <= '0;
      else if (pk_last && pk_row_last_q) rows_done_q <= rows_done_q + 16'd1;
      pass_done_q <= pass_last_w;
    end
  end
  assign out_rows_done_o = rows_done_q;
  // the output row being computed, for the loader's rules (line buffer: y < oy_o * stride - pad + r; b:
  // oy < oy_o + 2): the row being issued (its input rows are read only by the issue), but with b the oldest row
  // not yet done (its last groups may still read their b row in the epilogue); 0 between passes
  assign oy_o            = (st_q == StIdle) ? '0 : hdr.has_b ? rows_done_q : oy_q;
  assign pass_done_o     = pass_done_q;

  // descriptor fields and bits compute does not read
  logic unused_bits;
  assign unused_bits = ^{hdr, desc_i.ops, lba, wa_q, m_ox0, m_g0, m_ylast, m_pxstep, m_slot0a, m_sstepa,
                         m_rwrapa, m_x0, gbit, y_end_s, need_s, pk_bit, rem_x, rem_e, meta_epi, meta_pk,
                         wgb_q, obx_q, bbx_q, slotba_q, slota_q, pxa_q, kxa_q, ylast_q};

`ifndef SYNTHESIS
  // the arrays finish groups in order, one at a time; the group register never overflows
  grp_no_overrun : assert property (@(posedge clk_i) disable iff (!rst_ni) !(done && pend_q))
    else $error("%m: a group finished while the previous one still waited for the group register");
  fifo_bounded : assert property (@(posedge clk_i) disable iff (!rst_ni) gcnt_q <= 2'd2)
    else $error("%m: group FIFO overflow");
  pass_start_idle : assert property (@(posedge clk_i) disable iff (!rst_ni) pass_start_i |-> st_q == StIdle)
    else $error("%m: pass_start_i while a pass runs");
`endif
endmodule
`endif  // BHPE_ENG_COMPUTE_SV
