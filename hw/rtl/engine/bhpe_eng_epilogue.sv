`ifndef BHPE_PKG_SV
`include "bhpe_pkg.sv"
`endif
`ifndef BHPE_ENG_PKG_SV
`include "bhpe_eng_pkg.sv"
`endif

// The engine's epilogue: Pe lanes that run the descriptor's op chain (desc.ops[0 .. n_ops-1], docs/engine.md,
// "Semantics") on one channel group at a time, micro-coded: each op takes two cycles, a P cycle (operands:
// the product m * v or beta * v, the sum v + b, the join (v << shift_a) + (b << shift_b), registered as a
// 64-bit value) and an S cycle (floor shift, saturation to out_w signed bits, ReLU, Prelu's select, Sign and
// Threshold's comparisons), whose result is the next op's input (or, for the last op, the output register).
// Values are ValW = 40-bit signed, products 64 bits (the compiler checks that every intermediate fits).
//
// Constants: the constant buffer word col * ng + g (Pe signed 32-bit lanes, g = the group's global index),
// read one cycle before the P cycle that uses it (Threshold: the neg flag of column col + 1 is read for its S
// cycle). b (has_b): the group's b elements (Pe elements of ew_b = 2^lg_ew_b bits, channel g * Pe + p at bit
// (g * Pe + p) * ew_b of the pixel, extended by b_signed) are gathered from the b buffer, from word
// in_bbase_i (the pixel's first word) on, one word a cycle from the take on, while the first ops run.
//
// Handshakes: in_* (valid/ready: a group is taken when the epilogue is idle or in the S cycle of its last
// op, and, with n_ops = 0, when the output register is free); out_* (valid/ready, the output register).
// Timing per group (from take to take, the output never stalling): E = 2 * n_ops cycles (1 with n_ops = 0),
// plus max(0, nbw - 2 * j) with a JoinAdd at op index j, nbw = max(1, Pe * ew_b / 64) b words.
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

  // ---- sequencer -------------------------------------------------------------------------------------
  logic            busy_q, ph_q;    // ph_q: 0 = P cycle, 1 = S cycle of op op_q
  logic [3:0]      op_q;
  logic [15:0]     g_q;
  logic [BbAw-1:0] bbase_q;
  bhpe_eng_pkg::op_t cur, nxt, first;
  logic            is_last, out_free, take, p_fire, s_fire, b_done;

  assign cur      = desc_i.ops[op_q];
  assign nxt      = desc_i.ops[op_q + 4'd1];
  assign first    = desc_i.ops[0];
  assign is_last  = ({1'b0, op_q} == hdr.n_ops - 5'd1);
  assign out_free = ~out_valid_o | out_ready_i;
  assign p_fire   = busy_q & ~ph_q & ((cur.opcode != bhpe_eng_pkg::OpJoinAdd) | b_done);
  assign s_fire   = busy_q & ph_q & (~is_last | out_free);
  // take: idle, or the S cycle of the last op (which hands its result to the output register)
  assign take     = in_valid_i & ((hdr.n_ops == '0) ? out_free : (~busy_q | (s_fire & is_last)));
  assign in_ready_o = take;

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      busy_q <= 1'b0;
      ph_q   <= 1'b0;
      op_q   <= '0;
    end else if (take && hdr.n_ops != '0) begin
      busy_q <= 1'b1;
      ph_q   <= 1'b0;
      op_q   <= '0;
    end else if (s_fire) begin
      busy_q <= ~is_last;
      ph_q   <= 1'b0;
      op_q   <= op_q + 4'd1;
    end else if (p_fire) begin
      ph_q   <= 1'b1;
    end
  end
  always_ff @(posedge clk_i) begin
    if (take) begin
      g_q     <= in_g_i;
      bbase_q <= in_bbase_i;
    end
  end

  // ---- constant buffer address -----------------------------------------------------------------------
  // take: op 0's column (for its P cycle); a P cycle or the S cycle of the last op: column col + 1 (the
  // Threshold's neg flag for the S cycle); any other S cycle: the next op's column.
  logic [4:0]  ccol;
  logic [15:0] cgrp;
  always_comb begin
    if (take) begin
      ccol = {1'b0, first.col};
      cgrp = in_g_i;
    end else if (ph_q && !is_last) begin
      ccol = {1'b0, nxt.col};
      cgrp = g_q;
    end else begin
      ccol = {1'b0, cur.col} + 5'd1;
      cgrp = g_q;
    end
  end
  logic [20:0] caddr;
  assign caddr      = 21'(ccol) * 21'(hdr.ng) + 21'(cgrp);
  assign cb_raddr_o = caddr[CbAw-1:0];

  // ---- b gather --------------------------------------------------------------------------------------
  // the group's first b word in the pixel and its bit offset: (g * Pe * ew_b) / 64 and mod 64
  logic [BcW-1:0]   nbw;          // b words of a group
  logic [BcW-1:0]   bcnt_q;       // words issued
  logic             bcap_v_q;     // a word arrives this cycle
  logic [BiW-1:0]   bcap_i_q;     // ... its index
  logic [63:0]      breg_q [MaxBw];
  logic [5:0]       boff_q;
  logic [BbAw-1:0]  bw0, bw0_q;
  logic [5:0]       boff;
  logic [BbitW-1:0] bbit;
  always_comb begin
    unique case (hdr.lg_ew_b)
      3'd0:    nbw = (Pe >= 64) ? BcW'(Pe / 64) : BcW'(1);
      3'd3:    nbw = (Pe >= 8) ? BcW'(Pe / 8) : BcW'(1);
      3'd4:    nbw = BcW'(Pe / 4);
      default: nbw = BcW'(Pe / 2);
    endcase
  end
  assign bbit = (BbitW'(in_g_i) << LgPe) << hdr.lg_ew_b;
  assign bw0  = BbAw'(bbit >> 6);
  assign boff = bbit[5:0];

  always_comb begin
    if (take) bb_raddr_o = in_bbase_i + bw0;
    else      bb_raddr_o = bbase_q + bw0_q + BbAw'(bcnt_q);
  end

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      bcnt_q   <= '0;
      bcap_v_q <= 1'b0;
      bcap_i_q <= '0;
    end else if (take) begin
      bcnt_q   <= BcW'(1);
      bcap_v_q <= hdr.has_b;
      bcap_i_q <= '0;
    end else begin
      bcap_v_q <= hdr.has_b && (bcnt_q < nbw);
      bcap_i_q <= BiW'(bcnt_q);
      if (bcnt_q < nbw) bcnt_q <= bcnt_q + BcW'(1);
    end
  end
  assign b_done = (bcnt_q >= nbw) & ~bcap_v_q;
  always_ff @(posedge clk_i) begin
    if (take) begin
      bw0_q  <= bw0;
      boff_q <= boff;
    end
    if (bcap_v_q) breg_q[bcap_i_q] <= bb_rdata_i;
  end

  // the group's b elements: the low word shifted by the offset (a group narrower than a word), then lane p
  // at bit p * ew_b
  logic [MaxBw*64-1:0] bvec;
  always_comb begin
    for (int unsigned k = 0; k < MaxBw; k++) bvec[k*64 +: 64] = breg_q[k];
    bvec[63:0] = breg_q[0] >> boff_q;
  end

  // ---- the lanes -------------------------------------------------------------------------------------
  logic [ValW-1:0] val_q [Pe];
  logic [63:0]     pre_q [Pe];
  logic [Pe-1:0]   pos_q;
  logic [ValW-1:0] out_q [Pe];
  logic            out_valid_q;

  // the op's output range: [-2^(out_w-1), 2^(out_w-1) - 1]
  logic signed [63:0] sat_hi, sat_lo;
  assign sat_hi = (64'sd1 <<< (cur.out_w - 6'd1)) - 64'sd1;
  assign sat_lo = ~sat_hi;
  logic signed [7:0] sh;
  assign sh = $signed(cur.shift);

  for (genvar p = 0; p < Pe; p++) begin : gen_lane
    logic signed [ValW-1:0]    v;
    logic signed [31:0]        c;
    logic signed [ValW+31:0]   prod;
    logic signed [63:0]        v64, c64, b64, pre;
    logic signed [63:0]        pq, shifted, sat_shifted, sat_pre, sat_v;
    logic [ValW-1:0]           y;
    logic                      unused_prod, unused_sat;

    assign v    = val_q[p];
    assign c    = cb_rdata_i[p*32 +: 32];
    assign v64  = 64'(v);
    assign c64  = 64'(c);
    assign prod = v * c;
    assign unused_prod = ^prod[ValW+31:64];
    assign unused_sat  = ^{sat_shifted[62:ValW], sat_pre[63:ValW], sat_v[63:ValW]};  // saturated: fits ValW
    always_comb begin
      unique case (hdr.lg_ew_b)
        3'd0:    b64 = hdr.b_signed ? 64'($signed(bvec[p])) : 64'(bvec[p]);
        3'd3:    b64 = hdr.b_signed ? 64'($signed(bvec[p*8 +: 8])) : 64'(bvec[p*8 +: 8]);
        3'd4:    b64 = hdr.b_signed ? 64'($signed(bvec[p*16 +: 16])) : 64'(bvec[p*16 +: 16]);
        default: b64 = hdr.b_signed ? 64'($signed(bvec[p*32 +: 32])) : 64'(bvec[p*32 +: 32]);
      endcase
    end

    // P cycle
    always_comb begin
      unique case (cur.opcode)
        bhpe_eng_pkg::OpMulShift, bhpe_eng_pkg::OpPrelu: pre = prod[63:0];
        bhpe_eng_pkg::OpAddConst:  pre = v64 + c64;
        bhpe_eng_pkg::OpJoinAdd:   pre = (v64 <<< cur.shift_a) + (b64 <<< cur.shift_b);
        bhpe_eng_pkg::OpThreshold: pre = c64;
        default:                   pre = v64;  // Requant, Sign
      endcase
    end
    always_ff @(posedge clk_i) begin
      if (p_fire) begin
        pre_q[p] <= pre;
        pos_q[p] <= ~v[ValW-1] & (v != '0);
      end
    end

    // S cycle
    assign pq = pre_q[p];
    always_comb begin
      if (sh[7]) shifted = pq <<< (8'd0 - sh);
      else       shifted = pq >>> sh;
    end
    assign sat_shifted = (shifted > sat_hi) ? sat_hi : (shifted < sat_lo) ? sat_lo : shifted;
    assign sat_pre     = (pq > sat_hi) ? sat_hi : (pq < sat_lo) ? sat_lo : pq;
    assign sat_v       = (v64 > sat_hi) ? sat_hi : (v64 < sat_lo) ? sat_lo : v64;
    always_comb begin
      unique case (cur.opcode)
        bhpe_eng_pkg::OpRequant: begin
          y = ValW'(sat_shifted);
          if (cur.relu && sat_shifted[63]) y = '0;
        end
        bhpe_eng_pkg::OpMulShift:  y = ValW'(sat_shifted);
        bhpe_eng_pkg::OpPrelu:     y = pos_q[p] ? ValW'(sat_v) : ValW'(sat_shifted);
        bhpe_eng_pkg::OpSign:      y = ValW'(~v[ValW-1]);
        // threshold in pre_q, neg flag (column col + 1) on the constant read port
        bhpe_eng_pkg::OpThreshold: y = c[0] ? ValW'(v64 <= pq) : ValW'(v64 >= pq);
        default:                   y = ValW'(sat_pre);  // AddConst, JoinAdd
      endcase
    end

    always_ff @(posedge clk_i) begin
      if (take) begin
        val_q[p] <= in_val_i[p*ValW +: ValW];
      end else if (s_fire && !is_last) begin
        val_q[p] <= y;
      end
    end
    always_ff @(posedge clk_i) begin
      if (take && hdr.n_ops == '0) begin
        out_q[p] <= in_val_i[p*ValW +: ValW];
      end else if (s_fire && is_last) begin
        out_q[p] <= y;
      end
    end
    assign out_val_o[p*ValW +: ValW] = out_q[p];
  end

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      out_valid_q <= 1'b0;
    end else if ((take && hdr.n_ops == '0) || (s_fire && is_last)) begin
      out_valid_q <= 1'b1;
    end else if (out_ready_i) begin
      out_valid_q <= 1'b0;
    end
  end
  assign out_valid_o = out_valid_q;

  // descriptor fields the epilogue does not read
  logic unused_desc;
  assign unused_desc = ^{hdr, cur.rsvd, cur.rsvd1, nxt, first, caddr, bbit};

  bhpe_stream_assert #(.DataW(Pe*ValW)) u_out_assert (
    .clk_i, .rst_ni, .tdata_i(out_val_o), .tvalid_i(out_valid_o), .tready_i(out_ready_i)
  );
endmodule
