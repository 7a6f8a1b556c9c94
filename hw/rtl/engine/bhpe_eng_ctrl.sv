`ifndef BHPE_ENG_PKG_SV
`include "engine/bhpe_eng_pkg.sv"
`endif
`ifndef BHPE_ENG_CTRL_SV
`define BHPE_ENG_CTRL_SV

// Control of the layer-sequential engine (docs/engine.md, "Execution order"): fetches the descriptors and
// sequences each layer through the loader, compute and store.
//
// On start_i (CTRL.start): descriptor i (i = 0, 1, ...) is fetched from desc_addr_i + i * 256 (one 32-word read
// request, read-master client 0; descriptor i + 1 is prefetched into a second register set during the last pass
// of descriptor i, so the program must not overwrite its own descriptors) and checked (mode <= 3, n_ops <= 16,
// n_ct, n_strips, owt, r >= 1, and the buffers hold it: r * slot_words <= LbDepth, wtile_words <= WbDepth,
// n_cols * ng <= CbDepth, owt * cw_b <= BbDepth/2 (with b), owt * cw_out <= ObDepth/2; else ERROR 3).
// Then the layer runs:
//   constants (loader, n_cols * ng buffer words), once;
//   for t in 0 .. n_ct-1: the weights of tile t (loader, from w_addr + t * wtile_words * PE * 8; pool layers have
//     wtile_words = 0); then for s in 0 .. n_strips-1 a pass: a one-cycle pass_start to compute, loader and store
//     (tile t, strip s, ox0 = s * owt, owt_s = min(owt, ow - ox0), tile byte offset b0 = t * ct * ew_out / 8),
//     and the pass ends when compute has pulsed pass_done, the loader has every row in and the store has every
//     row's write responses back;
// then the next descriptor, or done after the one with `last`. A read (write) response other than OKAY aborts the
// program with ERROR 1 (2) and done + error in STATUS (reset the engine before the next start after an error).
// busy from start to done; CYCLES counts the cycles from the start pulse to done.
//
// Cycle costs (for the cycle model, compile/engine/cycles.py; measured in simulation with the DRAM model of
// sim/engine_harness.cpp, no stalls; L = read latency in cycles from the AR handshake to the first R beat, one beat a
// cycle). A layer takes
//   F + Cst + sum over tiles t of ( Wt + sum over strips s of (P_ts + 1) ) + 1 cycles:
//   F   = L + 35 for the first descriptor: its fetch (request, AR 2 cycles later, L, 32 beats, check);
//         F = 1 for the others: each is prefetched during the previous layer's last pass, as soon as the loader
//         has that pass's last row in (the request then waits for nothing; its data comes L + 34 cycles later);
//         if the prefetch has not arrived when the previous layer ends, F = 1 + the cycles still to wait;
//   Cst = 2 without constants, else L + 4 + n_cols * ng * PE / 2 (one request; not overlapped);
//   Wt  = 2 for a tile without weights (pool), else L + 4 + wtile_words * PE, not overlapped with compute, except
//         with double buffering (n_ct > 1 and wtile_words <= WbDepth/2): tile t's weights go to half t mod 2 of
//         the weight buffer, and tile t + 1's load starts with tile t's first pass, in the background (chunks of 4
//         buffer words, one outstanding, so rows never wait long), so Wt = 2 + what is left of that load when tile
//         t's passes end (tile 0: as above);
//   P_ts = cycles from pass_start to the cycle the store has the last write response of the pass (the loader,
//         compute and store overlap inside; see bhpe_eng_loader.sv and bhpe_eng_store.sv), + 1 to see it;
//   + 1: the cycle of the layer's end (then the prefetched descriptor is checked).
// CYCLES (start to done) = the sum over the layers + 2.
module bhpe_eng_ctrl #(
  parameter int unsigned PE      = 16,
  parameter int unsigned LbDepth = 4096,
  parameter int unsigned WbDepth = 1024,
  parameter int unsigned CbDepth = 512,
  parameter int unsigned BbDepth = 1024,
  parameter int unsigned ObDepth = 2048,
  parameter int unsigned AddrW   = 40
) (
  input  logic                clk_i,
  input  logic                rst_ni,
  // registers
  input  logic                start_i,
  input  logic [63:0]         desc_addr_i,
  output logic                done_o,
  output logic                busy_o,
  output logic [31:0]         error_o,
  output logic [63:0]         cycles_o,
  output logic [31:0]         layer_o,
  output logic                layer_start_o,  // one-cycle pulse, layer_o = the new layer_id meanwhile
  // the current descriptor
  output bhpe_eng_pkg::desc_t desc_o,
  // descriptor fetch: read-master client 0
  output logic                req_valid_o,
  input  logic                req_ready_i,
  output logic [AddrW-1:0]    req_addr_o,
  output logic [31:0]         req_words_o,
  input  logic                rvalid_i,
  input  logic [63:0]         rdata_i,
  input  logic                rd_err_i,
  input  logic                wr_err_i,
  output logic                clr_err_o,
  // loader
  output logic                const_start_o,
  input  logic                const_busy_i,
  output logic                wt_start_o,
  output logic [AddrW-1:0]    wt_addr_o,     // the tile's weights in DRAM (latched by the loader at wt_start_o)
  output logic                wt_half_o,     // ... into the upper half of the weight buffer
  output logic                wt_bg_o,       // ... in the background (compute is running)
  output logic                wb_rhalf_o,    // compute reads the upper half (the current tile's)
  input  logic                wt_busy_i,
  input  logic                ld_pass_busy_i,
  // pass
  output logic                pass_start_o,
  output logic [15:0]         pass_t_o,
  output logic [15:0]         pass_s_o,
  output logic [15:0]         pass_ox0_o,
  output logic [15:0]         pass_owt_o,
  output logic [31:0]         pass_b0_o,
  input  logic                pass_done_i,
  input  logic                st_pass_busy_i
);
  typedef enum logic [3:0] {
    CIdle, CFetch, CFetchWait, CCheck, CConst, CConstWait, CTile, CTileWait, CPass, CPassWait, CNext, CDone
  } cstate_e;
  cstate_e state_q;

  logic [bhpe_eng_pkg::DescWords-1:0][63:0] words_q, next_q;
  logic [4:0]        wcnt_q, ncnt_q;
  logic              pf_req, pf_busy_q, nvalid_q;
  logic [AddrW-1:0]  ptr_q;
  logic [15:0]       t_q, s_q, ox0_q;
  logic [31:0]       b0_q;
  logic              cdone_q;
  // the control reads only the sequencing fields of the header
  /* verilator lint_off UNUSEDSIGNAL */
  bhpe_eng_pkg::hdr_t h;
  /* verilator lint_on UNUSEDSIGNAL */
  logic unused_desc_addr;
  assign unused_desc_addr = ^desc_addr_i;

  assign desc_o = bhpe_eng_pkg::decode(words_q);
  assign h      = desc_o.hdr;

  logic bad_desc, err;
  // a descriptor the buffers cannot hold is refused (ERROR 3) rather than run into a neighbouring slot; checked
  // one cycle ahead into fits_q (from the prefetched words in the cycle they move in, else from the words being
  // fetched, whose header words 0..11 arrive long before the check), so no multiply is on the state's path
  logic fits, fits_q;
  /* verilator lint_off UNUSEDSIGNAL */
  bhpe_eng_pkg::hdr_t  hc;
  bhpe_eng_pkg::desc_t dc;
  /* verilator lint_on UNUSEDSIGNAL */
  assign dc       = bhpe_eng_pkg::decode((state_q == CNext && nvalid_q) ? next_q : words_q);
  assign hc       = dc.hdr;
  assign fits     = (32'(hc.r) * 32'(hc.slot_words) <= 32'(LbDepth)) && (32'(hc.wtile_words) <= 32'(WbDepth)) &&
                    (32'(hc.n_cols) * 32'(hc.ng) <= 32'(CbDepth)) &&
                    (!hc.has_b || 32'(hc.owt) * 32'(hc.cw_b) <= 32'(BbDepth / 2)) &&
                    (32'(hc.owt) * 32'(hc.cw_out) <= 32'(ObDepth / 2));
  always_ff @(posedge clk_i) begin
    if (!rst_ni) fits_q <= 1'b0;
    else         fits_q <= fits;
  end
  assign bad_desc = (h.mode > 4'd3) || (h.n_ops > 5'd16) || (h.n_ct == 16'd0) || (h.n_strips == 16'd0) ||
                    (h.owt == 16'd0) || (h.r == 16'd0) || !fits_q;
  assign err      = rd_err_i | wr_err_i;

  logic [15:0] owt_s;
  assign owt_s = (h.ow - ox0_q < h.owt) ? h.ow - ox0_q : h.owt;

  // the next descriptor is prefetched into next_q during the layer's last pass, once the loader has every row of it
  // in (so the 32 beats never delay an input row), and the next layer starts without a fetch
  assign pf_req        = (state_q == CPassWait) & ~h.last & ~pf_busy_q & ~nvalid_q & ~ld_pass_busy_i &
                         (s_q + 16'd1 == h.n_strips) & (t_q + 16'd1 == h.n_ct);
  assign req_valid_o   = (state_q == CFetch) | pf_req;
  assign req_addr_o    = pf_req ? ptr_q + AddrW'(bhpe_eng_pkg::DescWords * 8) : ptr_q;
  assign req_words_o   = 32'(bhpe_eng_pkg::DescWords);
  assign const_start_o = (state_q == CConst);
  // weight double buffering: when a tile fits half the weight buffer and the layer has several tiles, tile t lives in
  // half t mod 2 and tile t + 1 is loaded into the other half during tile t's first pass
  logic             dbl, wt_pref_q, pref_start;
  logic [AddrW-1:0] wtile_bytes, wcur_q;
  assign dbl         = (32'(h.wtile_words) <= 32'(WbDepth / 2)) && (h.n_ct > 16'd1) && (h.wtile_words != 16'd0);
  assign wtile_bytes = AddrW'({32'(h.wtile_words) * 32'(PE), 3'b000});
  assign pref_start  = (state_q == CPass) & (s_q == 16'd0) & dbl & (t_q + 16'd1 != h.n_ct);
  assign wt_start_o  = ((state_q == CTile) & ~wt_pref_q) | pref_start;
  assign wt_addr_o   = pref_start ? wcur_q + wtile_bytes : wcur_q;
  assign wt_half_o   = dbl & (pref_start ? ~t_q[0] : t_q[0]);
  assign wb_rhalf_o  = dbl & t_q[0];
  assign wt_bg_o     = pref_start;
  assign pass_start_o  = (state_q == CPass);
  assign pass_t_o      = t_q;
  assign pass_s_o      = s_q;
  assign pass_ox0_o    = ox0_q;
  assign pass_owt_o    = owt_s;
  assign pass_b0_o     = b0_q;
  assign busy_o        = (state_q != CIdle);
  assign clr_err_o     = (state_q == CIdle) & start_i;

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      state_q   <= CIdle;
      words_q   <= '0;
      wcnt_q    <= '0;
      next_q    <= '0;
      ncnt_q    <= '0;
      pf_busy_q <= 1'b0;
      nvalid_q  <= 1'b0;
      ptr_q     <= '0;
      t_q       <= '0;
      s_q       <= '0;
      ox0_q     <= '0;
      b0_q      <= '0;
      wcur_q    <= '0;
      wt_pref_q <= 1'b0;
      cdone_q   <= 1'b0;
      done_o    <= 1'b0;
      error_o   <= '0;
      cycles_o  <= '0;
      layer_o   <= '0;
      layer_start_o <= 1'b0;
    end else begin
      layer_start_o <= 1'b0;
      if (busy_o) cycles_o <= cycles_o + 64'd1;
      if (pass_done_i) cdone_q <= 1'b1;
      if (rvalid_i && !pf_busy_q) begin
        words_q[wcnt_q] <= rdata_i;
        wcnt_q          <= wcnt_q + 5'd1;
      end
      if (pf_req && req_ready_i) begin
        pf_busy_q <= 1'b1;
        ncnt_q    <= '0;
      end
      if (rvalid_i && pf_busy_q) begin
        next_q[ncnt_q] <= rdata_i;
        ncnt_q         <= ncnt_q + 5'd1;
        if (ncnt_q == 5'(bhpe_eng_pkg::DescWords - 1)) begin
          pf_busy_q <= 1'b0;
          nvalid_q  <= 1'b1;
        end
      end
      if (err && state_q != CIdle && state_q != CDone) begin
        error_o <= rd_err_i ? 32'd1 : 32'd2;
        state_q <= CDone;
      end else begin
        unique case (state_q)
          CIdle: begin
            if (start_i) begin
              pf_busy_q <= 1'b0;
              nvalid_q  <= 1'b0;
              done_o   <= 1'b0;
              error_o  <= '0;
              cycles_o <= '0;
              ptr_q    <= AddrW'(desc_addr_i);
              state_q  <= CFetch;
            end
          end
          CFetch: begin
            wcnt_q <= '0;
            if (req_ready_i) state_q <= CFetchWait;
          end
          CFetchWait: begin
            if (rvalid_i && wcnt_q == 5'(bhpe_eng_pkg::DescWords - 1)) state_q <= CCheck;
          end
          CCheck: begin
            if (bad_desc) begin
              error_o <= 32'd3;
              state_q <= CDone;
            end else begin
              layer_o       <= h.layer_id;
              layer_start_o <= 1'b1;
              t_q       <= '0;
              b0_q      <= '0;
              wcur_q    <= AddrW'(h.w_addr);
              wt_pref_q <= 1'b0;
              state_q   <= CConst;
            end
          end
          CConst:     state_q <= CConstWait;
          CConstWait: if (!const_busy_i) state_q <= CTile;
          CTile:      state_q <= CTileWait;
          CTileWait: begin
            if (!wt_busy_i) begin
              wt_pref_q <= 1'b0;
              s_q     <= '0;
              ox0_q   <= '0;
              state_q <= CPass;
            end
          end
          CPass: begin
            if (pref_start) wt_pref_q <= 1'b1;
            cdone_q <= 1'b0;
            state_q <= CPassWait;
          end
          CPassWait: begin
            if (cdone_q && !ld_pass_busy_i && !st_pass_busy_i) begin
              if (s_q + 16'd1 == h.n_strips) begin
                if (t_q + 16'd1 == h.n_ct) begin
                  state_q <= CNext;
                end else begin
                  t_q       <= t_q + 16'd1;
                  wcur_q    <= wcur_q + wtile_bytes;
                  b0_q      <= b0_q + ((32'(h.ct) << h.lg_ew_out) >> 3);
                  state_q   <= CTile;
                end
              end else begin
                s_q     <= s_q + 16'd1;
                ox0_q   <= ox0_q + h.owt;
                state_q <= CPass;
              end
            end
          end
          CNext: begin
            if (h.last) begin
              state_q <= CDone;
            end else if (nvalid_q) begin  // prefetched: decode it now
              words_q  <= next_q;
              nvalid_q <= 1'b0;
              ptr_q    <= ptr_q + AddrW'(bhpe_eng_pkg::DescWords * 8);
              state_q  <= CCheck;
            end else if (!pf_busy_q) begin
              ptr_q   <= ptr_q + AddrW'(bhpe_eng_pkg::DescWords * 8);
              state_q <= CFetch;
            end
          end
          CDone: begin
            done_o  <= 1'b1;
            state_q <= CIdle;
          end
          default: state_q <= CIdle;
        endcase
      end
    end
  end

`ifndef SYNTHESIS
  fetch_only_when_asked : assert property (@(posedge clk_i) disable iff (!rst_ni)
      rvalid_i |-> (state_q == CFetchWait) || pf_busy_q)
    else $error("%m: descriptor data arrived outside a descriptor fetch");
`endif
endmodule
`endif  // BHPE_ENG_CTRL_SV
