`ifndef BHPE_PKG_SV
`include "bhpe_pkg.sv"
`endif

// Operand fetch of the matrix-vector units (bhpe_xnor_mvu, bhpe_fxp_mvu, bhpe_mvu_wstream).
//
// For every output pixel the unit walks the folded weight matrix NF times (neuron folds) over SF input
// beats (synapse folds): NF*SF steps, one step a cycle at full rate. In neuron fold 0 the operand comes
// from the input stream and is written into the input buffer (SF entries); in folds 1..NF-1 it is read
// back from the buffer, so the input stream is read exactly once per pixel.
//
// Weights, one word of WordW bits a step, from one of two sources:
//   WStream = 0: a ROM (InitFile, $readmemh, NF*SF words): the word of step (nf, sf) sits at address
//                nf*SF + sf and is read synchronously together with the operand. w_t* are unused (tie
//                w_tdata and w_tvalid to 0, leave w_tready open).
//   WStream = 1: the weight stream w_t*, one word a step in the same order (no ROM). A step then takes a
//                weight beat and, in neuron fold 0, an input beat in the same cycle: in_tready waits for
//                w_tvalid and w_tready waits for in_tvalid there (AXI-Stream lets a ready depend on a valid;
//                no valid here depends on a ready).
//
// Output: one registered step (operand, mask, weight word, first/last synapse-fold flags, valid). The
// whole pipeline advances when en_i is high (the consumer's output slot is free or draining) and holds
// otherwise.
module bhpe_mvu_fetch #(
  parameter int unsigned Simd     = 1,
  parameter int unsigned ElemW    = 1,
  parameter int unsigned NF       = 1,
  parameter int unsigned SF       = 1,
  parameter int unsigned WordW    = 1,
  parameter bit          WStream  = 1'b0,
  parameter string       InitFile = "",
  localparam int unsigned InDataW = Simd * ElemW
) (
  input  logic               clk_i,
  input  logic               rst_ni,
  input  logic [InDataW-1:0] in_tdata,
  input  logic [Simd-1:0]    in_tmask,
  input  logic               in_tvalid,
  output logic               in_tready,
  input  logic [WordW-1:0]   w_tdata,
  input  logic               w_tvalid,
  output logic               w_tready,
  input  logic               en_i,
  output logic [InDataW-1:0] act_o,
  output logic [Simd-1:0]    mask_o,
  output logic [WordW-1:0]   wgt_o,
  output logic               valid_o,
  output logic               first_o,
  output logic               last_o
);
  localparam int unsigned Depth = NF * SF;
  localparam int unsigned SfW   = bhpe_pkg::clog2_min1(SF);
  localparam int unsigned NfW   = bhpe_pkg::clog2_min1(NF);
  localparam int unsigned BufW  = InDataW + Simd;

  // ---- step counters -------------------------------------------------------------------------------
  logic [SfW-1:0] sf_q, sf_d;
  logic [NfW-1:0] nf_q, nf_d;
  logic           from_input, w_ok, step, sf_last;

  assign w_ok       = WStream ? w_tvalid : 1'b1;  // a ROM word is always there
  assign from_input = (nf_q == '0);
  assign sf_last    = (sf_q == SfW'(SF - 1));
  assign step       = en_i & w_ok & (~from_input | in_tvalid);
  assign in_tready  = en_i & from_input & w_ok;
  assign w_tready   = WStream & en_i & (~from_input | in_tvalid);

  always_comb begin
    sf_d = sf_q;
    nf_d = nf_q;
    if (step) begin
      sf_d = sf_last ? '0 : sf_q + SfW'(1);
      if (sf_last) nf_d = (nf_q == NfW'(NF - 1)) ? '0 : nf_q + NfW'(1);
    end
  end

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      sf_q <= '0;
      nf_q <= '0;
    end else begin
      sf_q <= sf_d;
      nf_q <= nf_d;
    end
  end

  // ---- weight word of this step: the ROM (address nf*SF + sf) or the stream -------------------------
  logic [WordW-1:0] wgt;
  if (WStream) begin : gen_wstream
    assign wgt = w_tdata;
  end else begin : gen_rom
    localparam int unsigned AddrW = bhpe_pkg::clog2_min1(Depth);
    logic [WordW-1:0] rom [Depth];
    initial begin
      if (InitFile != "") $readmemh(InitFile, rom);
    end
    logic [AddrW-1:0] addr_q, addr_d;
    always_comb begin
      addr_d = addr_q;
      if (step) addr_d = (addr_q == AddrW'(Depth - 1)) ? '0 : addr_q + AddrW'(1);
    end
    always_ff @(posedge clk_i) begin
      if (!rst_ni) addr_q <= '0;
      else         addr_q <= addr_d;
    end
    assign wgt = rom[addr_q];
    // the weight-stream inputs are not used with a ROM
    logic unused_w;
    assign unused_w = ^{w_tdata, w_tvalid};
  end

  // ---- input buffer (only needed when the vector is used more than once) ---------------------------
  logic [BufW-1:0] operand;
  if (NF > 1) begin : gen_buffer
    logic [BufW-1:0] buf_q [SF];
    always_ff @(posedge clk_i) begin
      if (step && from_input) buf_q[sf_q] <= {in_tmask, in_tdata};
    end
    assign operand = from_input ? {in_tmask, in_tdata} : buf_q[sf_q];
  end else begin : gen_no_buffer
    assign operand = {in_tmask, in_tdata};
  end

  // ---- registered step -----------------------------------------------------------------------------
  logic [InDataW-1:0] act_q;
  logic [Simd-1:0]    mask_q;
  logic [WordW-1:0]   wgt_q;
  logic               valid_q, first_q, last_q;

  always_ff @(posedge clk_i) begin
    if (!rst_ni)   valid_q <= 1'b0;
    else if (en_i) valid_q <= step;
  end

  always_ff @(posedge clk_i) begin
    if (step) begin
      {mask_q, act_q} <= operand;
      wgt_q           <= wgt;
      first_q         <= (sf_q == '0);
      last_q          <= sf_last;
    end
  end

  assign act_o   = act_q;
  assign mask_o  = mask_q;
  assign wgt_o   = wgt_q;
  assign valid_o = valid_q;
  assign first_o = first_q;
  assign last_o  = last_q;
endmodule
