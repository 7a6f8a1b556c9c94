`ifndef BHPE_PKG_SV
`include "bhpe_pkg.sv"
`endif
`ifndef BHPE_ENG_PKG_SV
`include "engine/bhpe_eng_pkg.sv"
`endif
`ifndef BHPE_ENG_EPILOGUE_SV
`define BHPE_ENG_EPILOGUE_SV

// The engine's epilogue: Pe lanes that run the descriptor's op chain (desc.ops[0 .. n_ops-1], docs/engine.md,
// "Semantics") on channel groups, micro-coded. Each op is a P cycle (operands: the product m * v or beta * v,
// the sum v + b, the join (v << shift_a) + (b << shift_b), registered as a 64-bit value) and an S cycle (floor
// shift, saturation to out_w signed bits, ReLU, Prelu's select, Sign and Threshold's comparisons), whose result
// is the next op's input (the last op's goes to the output register). A Threshold is two micro-ops (its neg flag,
// column col + 1, then its threshold, column col: one constant read each). Values are ValW = 40-bit signed,
// products 64 bits (the compiler checks that every intermediate fits).
//
// Two contexts run two groups interleaved: in every cycle one context has its P slot and the other its S slot
// (slot parity ph_q), so the P and S datapaths both work every cycle and a group costs about n_ops cycles of
// throughput although each op takes two. A group is taken into the context whose S slot it is, when that
// context is idle or finishing its last op; groups leave in the order they came (a context's last S waits for
// the older group).
//
// Constants: the constant buffer word col * ng + g (Pe signed 32-bit lanes, g = the group's global index), read
// two cycles before the P slot that uses it and registered (in_g_next_i: the group after the one at in_*, for
// reading ahead of a take). b (has_b): the group's Pe elements of ew_b = 2^lg_ew_b bits
// (channel g * Pe + p at bit (g * Pe + p) * ew_b of the pixel, extended by b_signed) are gathered from the b
// buffer, from word in_bbase_i (the pixel's first word) on, one word a cycle, from the cycle after the take (one
// gather at a time, the older group first); a JoinAdd's P waits for them.
//
// Handshakes: in_* (valid/ready: ready = the take; with n_ops = 0 the value goes straight to the output register
// when it is free); out_* (valid/ready, the output register).
module bhpe_eng_epilogue #(
  parameter int unsigned Pe      = 16,
  parameter int unsigned CbDepth = 512,
  parameter int unsigned BbDepth = 1024,
  localparam int unsigned CbAw   = $clog2(CbDepth),
  localparam int unsigned BbAw   = $clog2(BbDepth)
) (
  input  logic                                clk_i,
  input  logic                                rst_ni,
  input  bhpe_eng_pkg::desc_t                 desc_i,
  input  logic                                in_valid_i,
  output logic                                in_ready_o,
  input  logic [Pe*bhpe_eng_pkg::ValW-1:0]    in_val_i,
  input  logic [15:0]                         in_g_i,
  input  logic [15:0]                         in_g_next_i,
  input  logic [BbAw-1:0]                     in_bbase_i,
  output logic [CbAw-1:0]                     cb_raddr_o,
  input  logic [Pe*32-1:0]                    cb_rdata_i,
  output logic [BbAw-1:0]                     bb_raddr_o,
  input  logic [63:0]                         bb_rdata_i,
  output logic                                out_valid_o,
  input  logic                                out_ready_i,
  output logic [Pe*bhpe_eng_pkg::ValW-1:0]    out_val_o
);
  localparam int unsigned ValW  = bhpe_eng_pkg::ValW;
  localparam int unsigned LgPe  = $clog2(Pe);
  localparam int unsigned MaxBw = (Pe * 32) / 64;  // b words of a group (32-bit elements)
  localparam int unsigned BcW   = $clog2(MaxBw + 1);
  localparam int unsigned BiW   = bhpe_pkg::clog2_min1(MaxBw);
  localparam int unsigned BbitW = 16 + LgPe + 5;  // bit offset of a group's b elements in the pixel

  if (Pe < 8 || (1 << LgPe) != Pe) begin : gen_bad_pe
    $error("bhpe_eng_epilogue: Pe must be a power of two, at least 8");
  end

  bhpe_eng_pkg::hdr_t hdr;
  assign hdr = desc_i.hdr;

  // ---- contexts ------------------------------------------------------------------------------------------
  logic              ph_q;           // context ph_q has its P slot, context ~ph_q its S slot
  logic [1:0]        busy_q, phs_q;  // phs_q[c]: 0 = its next step is a P, 1 = an S
  logic [1:0]        sub_q;          // Threshold: 0 = the neg micro-op, 1 = the threshold micro-op
  logic [3:0]        op_q [2];
  logic [15:0]       g_q [2];
  logic              older_q;        // the context holding the older group (when both are busy)
  logic [1:0]        bready_q;       // the context's b elements are in
  logic              cp, cs;         // the contexts in their P and S slots
  assign cp = ph_q;
  assign cs = ~ph_q;

  bhpe_eng_pkg::op_t op_p, op_s, op0;
  logic thr0_p, thr0_s, last_s, out_free, p_fire, s_fire, take, finish;
  // each context's current op word and its saturation bound, registered when the op changes (no descriptor
  // multiplexer or bound computation in the P and S paths)
  bhpe_eng_pkg::op_t  opw_q [2];
  logic signed [63:0] hi_q [2];
  logic signed [7:0]  sh_q [2];  // the S cycle's shift (negative: left): see s_shift
  bhpe_eng_pkg::op_t  op_s_next;
  assign op_p      = opw_q[cp];
  assign op_s      = opw_q[cs];
  assign op_s_next = desc_i.ops[op_q[cs] + 4'd1];

  // the S cycle's shift of an op: its floor shift (Requant, MulShift, Prelu), the join's common left shift
  // min(shift_a, shift_b) (JoinAdd: the P cycle forms ((a or b) << |shift_a - shift_b|) + (b or a)), else none
  function automatic logic signed [7:0] s_shift(input logic [3:0] opcode, input logic [7:0] shift,
                                                 input logic [7:0] shift_a, input logic [7:0] shift_b);
    unique case (opcode)
      bhpe_eng_pkg::OpRequant, bhpe_eng_pkg::OpMulShift, bhpe_eng_pkg::OpPrelu: return $signed(shift);
      bhpe_eng_pkg::OpJoinAdd: return 8'sd0 - $signed((shift_a < shift_b) ? shift_a : shift_b);
      default: return 8'sd0;
    endcase
  endfunction

  always_ff @(posedge clk_i) begin
    if (take && hdr.n_ops != '0) begin
      opw_q[cs] <= op0;
      hi_q[cs]  <= (64'sd1 <<< (op0.out_w - 6'd1)) - 64'sd1;
      sh_q[cs]  <= s_shift(op0.opcode, op0.shift, op0.shift_a, op0.shift_b);
    end else if (s_fire && !thr0_s) begin
      opw_q[cs] <= op_s_next;
      hi_q[cs]  <= (64'sd1 <<< (op_s_next.out_w - 6'd1)) - 64'sd1;
      sh_q[cs]  <= s_shift(op_s_next.opcode, op_s_next.shift, op_s_next.shift_a, op_s_next.shift_b);
    end
  end
  assign op0       = desc_i.ops[0];
  assign thr0_p    = (op_p.opcode == bhpe_eng_pkg::OpThreshold) && !sub_q[cp];
  assign thr0_s    = (op_s.opcode == bhpe_eng_pkg::OpThreshold) && !sub_q[cs];
  assign last_s    = ({1'b0, op_q[cs]} == hdr.n_ops - 5'd1) && !thr0_s;
  assign out_free  = ~out_valid_o | out_ready_i;
  assign p_fire    = busy_q[cp] & ~phs_q[cp] & ((op_p.opcode != bhpe_eng_pkg::OpJoinAdd) | bready_q[cp]);
  // the last op's S: the output register must be free and the other context's group not older
  assign s_fire    = busy_q[cs] & phs_q[cs] &
                     (~last_s | (out_free & (~busy_q[cp] | (older_q == cs))));
  assign finish    = s_fire & last_s;
  assign take      = in_valid_i & ((hdr.n_ops == '0) ? out_free : (~busy_q[cs] | finish));
  assign in_ready_o = take;

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      ph_q    <= 1'b0;
      busy_q  <= '0;
      phs_q   <= '0;
      sub_q   <= '0;
      older_q <= 1'b0;
      op_q[0] <= '0;
      op_q[1] <= '0;
    end else begin
      ph_q <= ~ph_q;
      if (p_fire) phs_q[cp] <= 1'b1;
      if (take && hdr.n_ops != '0) begin
        busy_q[cs]  <= 1'b1;
        phs_q[cs]   <= 1'b0;
        sub_q[cs]   <= 1'b0;
        op_q[cs]    <= '0;
        older_q     <= busy_q[cp] ? cp : cs;
      end else if (s_fire) begin
        phs_q[cs] <= 1'b0;
        if (thr0_s) begin
          sub_q[cs] <= 1'b1;
        end else begin
          sub_q[cs] <= 1'b0;
          op_q[cs]  <= op_q[cs] + 4'd1;
        end
        if (last_s) begin
          busy_q[cs] <= 1'b0;
          older_q    <= cp;
        end
      end
    end
  end
  always_ff @(posedge clk_i) begin
    if (take) g_q[cs] <= in_g_i;
  end

  // ---- constant buffer address: the micro-op the P-slot context runs in its next P slot (two cycles on) ------
  // The read data is registered (c_q) before the P cycle's multiplier. Where that next P is the first of a
  // group not yet taken (the context is idle or in its last micro-op), the address is op 0's for the group the
  // context will take in its S slot next cycle: the FIFO's head, or the one after it when the S-slot context
  // takes the head now (in_g_next_i); if no group is taken then, the read is unused.
  bhpe_eng_pkg::op_t op_p_next;
  logic              last_p;
  logic [4:0]        ccol;
  logic [15:0]       cgrp;
  assign op_p_next = desc_i.ops[op_q[cp] + 4'd1];
  assign last_p    = ({1'b0, op_q[cp]} == hdr.n_ops - 5'd1) && !thr0_p;
  always_comb begin
    if (busy_q[cp] && !phs_q[cp] && p_fire && !last_p) begin
      cgrp = g_q[cp];
      if (thr0_p) ccol = {1'b0, op_p.col};  // after the Threshold's neg micro-op: its threshold
      else ccol = {1'b0, op_p_next.col} + ((op_p_next.opcode == bhpe_eng_pkg::OpThreshold) ? 5'd1 : 5'd0);
    end else if (busy_q[cp] && !phs_q[cp] && !p_fire) begin
      cgrp = g_q[cp];  // a P to retry (JoinAdd waiting for b)
      ccol = {1'b0, op_p.col} + (thr0_p ? 5'd1 : 5'd0);
    end else begin
      cgrp = take ? in_g_next_i : in_g_i;
      ccol = {1'b0, op0.col} + ((op0.opcode == bhpe_eng_pkg::OpThreshold) ? 5'd1 : 5'd0);
    end
  end
  logic [20:0] caddr;
  assign caddr      = 21'(ccol) * 21'(hdr.ng) + 21'(cgrp);
  assign cb_raddr_o = caddr[CbAw-1:0];
  logic [Pe*32-1:0] c_q;
  always_ff @(posedge clk_i) begin
    c_q <= cb_rdata_i;
  end

  // ---- b gather: one group at a time ----------------------------------------------------------------------
  logic [BcW-1:0]   nbw;
  logic [1:0]       breq_q;          // the context's gather is still to start
  logic             gact_q, gctx_q;  // a gather runs, for context gctx_q
  logic [BcW-1:0]   gcnt_q;          // its words issued
  logic             cap_v_q, cap_ctx_q, cap_last_q;
  logic [BiW-1:0]   cap_i_q;
  logic [BbAw-1:0]  bbase_q [2];
  logic [BbAw-1:0]  bw0, bw0_q [2];
  logic [5:0]       boff, boff_q [2];
  logic [BbitW-1:0] bbit;
  logic [63:0]      breg_q [2][MaxBw];
  logic             gstart, gnext;
  always_comb begin
    unique case (hdr.lg_ew_b)
      3'd0:    nbw = (Pe >= 64) ? BcW'(Pe / 64) : BcW'(1);
      3'd3:    nbw = BcW'(Pe / 8);
      3'd4:    nbw = BcW'(Pe / 4);
      default: nbw = BcW'(Pe / 2);
    endcase
  end
  assign bbit = (BbitW'(in_g_i) << LgPe) << hdr.lg_ew_b;
  assign bw0  = BbAw'(bbit >> 6);
  assign boff = bbit[5:0];
  always_ff @(posedge clk_i) begin
    if (take) begin
      bbase_q[cs] <= in_bbase_i;
      bw0_q[cs]   <= bw0;
      boff_q[cs]  <= boff;
    end
  end

  // start a pending gather (the older group's first when both wait)
  assign gstart = ~gact_q & (breq_q != '0);
  assign gnext  = (breq_q == 2'b11) ? older_q : breq_q[1];
  assign bb_raddr_o = bbase_q[gctx_q] + bw0_q[gctx_q] + BbAw'(gcnt_q);

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      breq_q     <= '0;
      bready_q   <= '0;
      gact_q     <= 1'b0;
      gctx_q     <= 1'b0;
      gcnt_q     <= '0;
      cap_v_q    <= 1'b0;
      cap_ctx_q  <= 1'b0;
      cap_last_q <= 1'b0;
      cap_i_q    <= '0;
    end else begin
      cap_v_q    <= gact_q;
      cap_ctx_q  <= gctx_q;
      cap_i_q    <= BiW'(gcnt_q);
      cap_last_q <= gact_q && (gcnt_q == nbw - BcW'(1));
      if (gact_q) begin
        gcnt_q <= gcnt_q + BcW'(1);
        if (gcnt_q == nbw - BcW'(1)) begin
          // the last word: the other context's gather follows at once if it waits
          gact_q <= breq_q[~gctx_q];
          gctx_q <= ~gctx_q;
          gcnt_q <= '0;
          breq_q[~gctx_q] <= 1'b0;
        end
      end else if (gstart) begin
        gact_q        <= 1'b1;
        gctx_q        <= gnext;
        gcnt_q        <= '0;
        breq_q[gnext] <= 1'b0;
      end
      if (cap_v_q && cap_last_q) bready_q[cap_ctx_q] <= 1'b1;
      if (take && hdr.has_b) begin
        breq_q[cs]   <= 1'b1;
        bready_q[cs] <= 1'b0;
      end
    end
  end
  always_ff @(posedge clk_i) begin
    if (cap_v_q) breg_q[cap_ctx_q][cap_i_q] <= bb_rdata_i;
  end

  // the P context's b elements: the low word shifted by the offset (a group narrower than a word), then lane
  // p at bit p * ew_b
  logic [MaxBw*64-1:0] bvec;
  always_comb begin
    for (int unsigned k = 0; k < MaxBw; k++) bvec[k*64 +: 64] = breg_q[cp][k];
    bvec[63:0] = breg_q[cp][0] >> boff_q[cp];
  end

  // ---- the lanes -----------------------------------------------------------------------------------------
  logic [ValW-1:0] val_q [2][Pe];
  logic [63:0]     pre_q [2][Pe];
  logic [Pe-1:0]   pos_q [2];
  logic [Pe-1:0]   neg_q [2];
  logic [ValW-1:0] out_q [Pe];
  logic            out_valid_q;

  // the S op's output range: [-2^(out_w-1), 2^(out_w-1) - 1]; its shift (|shift| <= 62)
  logic signed [63:0] sat_hi, sat_lo;
  assign sat_hi = hi_q[cs];
  assign sat_lo = ~sat_hi;
  logic       sh_left;
  logic [5:0] sh_amt;
  logic [7:0] sh_neg;
  assign sh_neg  = 8'd0 - sh_q[cs];
  assign sh_left = sh_q[cs][7];
  assign sh_amt  = sh_left ? sh_neg[5:0] : sh_q[cs][5:0];
  // the join's operand shifted in the P cycle and by how much: the one with the larger shift, by the difference
  logic       ja_b_first;  // shift_b > shift_a: b is shifted
  logic [7:0] ja_diff;
  assign ja_b_first = op_p.shift_b > op_p.shift_a;
  assign ja_diff    = ja_b_first ? op_p.shift_b - op_p.shift_a : op_p.shift_a - op_p.shift_b;
  logic is_ja_p, is_add_p, is_mul_p, is_thr_p;
  assign is_ja_p  = (op_p.opcode == bhpe_eng_pkg::OpJoinAdd);
  assign is_add_p = (op_p.opcode == bhpe_eng_pkg::OpAddConst);
  assign is_mul_p = (op_p.opcode == bhpe_eng_pkg::OpMulShift) || (op_p.opcode == bhpe_eng_pkg::OpPrelu);
  assign is_thr_p = (op_p.opcode == bhpe_eng_pkg::OpThreshold);
  logic unused_sh;
  assign unused_sh = ^{sh_neg[7:6], sh_q[cs][6], ja_diff[7:6]};

  for (genvar p = 0; p < Pe; p++) begin : gen_lane
    // P slot (context cp): the product, the one sum (v + c, or the join's), or an operand
    logic signed [ValW-1:0]  vp;
    logic signed [31:0]      c;
    logic signed [ValW+31:0] prod;
    logic signed [63:0]      vp64, c64, b64, ja_x, ja_y, sum_a, sum_b, pre;
    logic                    unused_prod;
    assign vp   = val_q[cp][p];
    assign c    = c_q[p*32 +: 32];
    assign vp64 = 64'(vp);
    assign c64  = 64'(c);
    assign prod = vp * c;
    assign unused_prod = ^prod[ValW+31:64];
    always_comb begin
      unique case (hdr.lg_ew_b)
        3'd0:    b64 = hdr.b_signed ? 64'($signed(bvec[p])) : 64'(bvec[p]);
        3'd3:    b64 = hdr.b_signed ? 64'($signed(bvec[p*8 +: 8])) : 64'(bvec[p*8 +: 8]);
        3'd4:    b64 = hdr.b_signed ? 64'($signed(bvec[p*16 +: 16])) : 64'(bvec[p*16 +: 16]);
        default: b64 = hdr.b_signed ? 64'($signed(bvec[p*32 +: 32])) : 64'(bvec[p*32 +: 32]);
      endcase
    end
    assign ja_x  = ja_b_first ? b64 : vp64;
    assign ja_y  = ja_b_first ? vp64 : b64;
    assign sum_a = is_ja_p ? (ja_x << ja_diff[5:0]) : vp64;
    assign sum_b = is_ja_p ? ja_y : c64;
    always_comb begin
      if (is_mul_p)                 pre = prod[63:0];
      else if (is_ja_p || is_add_p) pre = sum_a + sum_b;
      else if (is_thr_p)            pre = c64;
      else                          pre = vp64;  // Requant, Sign
    end
    always_ff @(posedge clk_i) begin
      if (p_fire) begin
        pre_q[cp][p] <= pre;
        pos_q[cp][p] <= ~vp[ValW-1] & (vp != '0);
        if (thr0_p) neg_q[cp][p] <= c[0];
      end
    end

    // S slot (context cs): one shift, one saturation (Prelu's positive side saturates v itself)
    logic signed [ValW-1:0] vs;
    logic signed [63:0]     vs64, pq, shifted, x, xs;
    logic signed [ValW:0]   v41, t41;
    logic [ValW-1:0]        y;
    logic                   unused_sat;
    assign vs   = val_q[cs][p];
    assign vs64 = 64'(vs);
    assign pq   = pre_q[cs][p];
    assign shifted = sh_left ? (pq <<< sh_amt) : (pq >>> sh_amt);
    assign x    = (op_s.opcode == bhpe_eng_pkg::OpPrelu && pos_q[cs][p]) ? vs64 : shifted;
    assign xs   = (x > sat_hi) ? sat_hi : (x < sat_lo) ? sat_lo : x;
    assign unused_sat = ^{xs[62:ValW], pq[63:ValW+1]};  // saturated: fits ValW; a threshold fits 32 bits
    assign v41  = (ValW+1)'(vs);
    assign t41  = pq[ValW:0];
    always_comb begin
      unique case (op_s.opcode)
        bhpe_eng_pkg::OpSign:      y = ValW'(~vs[ValW-1]);
        // the neg micro-op leaves the value; the threshold (in pre_q) with the neg flag captured before
        bhpe_eng_pkg::OpThreshold: y = thr0_s ? vs : neg_q[cs][p] ? ValW'(v41 <= t41) : ValW'(v41 >= t41);
        default: begin
          y = ValW'(xs);
          if (op_s.opcode == bhpe_eng_pkg::OpRequant && op_s.relu && xs[63]) y = '0;
        end
      endcase
    end

    always_ff @(posedge clk_i) begin
      if (take) begin
        val_q[cs][p] <= in_val_i[p*ValW +: ValW];
      end else if (s_fire && !last_s) begin
        val_q[cs][p] <= y;
      end
    end
    always_ff @(posedge clk_i) begin
      if (take && hdr.n_ops == '0) begin
        out_q[p] <= in_val_i[p*ValW +: ValW];
      end else if (finish) begin
        out_q[p] <= y;
      end
    end
    assign out_val_o[p*ValW +: ValW] = out_q[p];
  end

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      out_valid_q <= 1'b0;
    end else if ((take && hdr.n_ops == '0) || finish) begin
      out_valid_q <= 1'b1;
    end else if (out_ready_i) begin
      out_valid_q <= 1'b0;
    end
  end
  assign out_valid_o = out_valid_q;

  // descriptor fields the epilogue does not read
  logic unused_desc;
  assign unused_desc = ^{hdr, op_p, op_p_next, op_s, op0, caddr, bbit};

`ifndef SYNTHESIS
  // a take into a context that is neither idle nor finishing would lose a group
  take_free : assert property (@(posedge clk_i) disable iff (!rst_ni)
                               take && hdr.n_ops != '0 |-> !busy_q[cs] || finish)
    else $error("%m: group taken into a busy context");
`endif

  bhpe_stream_assert #(.DataW(Pe*ValW)) u_out_assert (
    .clk_i, .rst_ni, .tdata_i(out_val_o), .tvalid_i(out_valid_o), .tready_i(out_ready_i)
  );
endmodule
`endif  // BHPE_ENG_EPILOGUE_SV
