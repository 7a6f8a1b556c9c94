// Operand fetch of the matrix-vector units (bhpe_xnor_mvu, bhpe_fxp_mvu).
//
// For every output pixel the unit walks the folded weight matrix NF times (neuron folds) over SF input
// beats (synapse folds): NF*SF steps, one step a cycle at full rate. In neuron fold 0 the operand comes
// from the input stream and is written into the input buffer (SF entries); in folds 1..NF-1 it is read
// back from the buffer, so the input stream is read exactly once per pixel. The weight ROM word of step
// (nf, sf) sits at address nf*SF + sf and is read synchronously together with the operand.
//
// Output: one registered step (operand, mask, weight word, first/last synapse-fold flags, valid).
// The whole pipeline advances when en_i is high (the consumer's output slot is free or draining) and
// holds otherwise; in_tready is en_i while in neuron fold 0.
module bhpe_mvu_fetch #(
  parameter int unsigned Simd     = 1,
  parameter int unsigned ElemW    = 1,
  parameter int unsigned NF       = 1,
  parameter int unsigned SF       = 1,
  parameter int unsigned WordW    = 1,
  parameter string       InitFile = "",
  localparam int unsigned InDataW = Simd * ElemW
) (
  input  logic               clk_i,
  input  logic               rst_ni,
  input  logic [InDataW-1:0] in_tdata,
  input  logic [Simd-1:0]    in_tmask,
  input  logic               in_tvalid,
  output logic               in_tready,
  input  logic               en_i,
  output logic [InDataW-1:0] act_o,
  output logic [Simd-1:0]    mask_o,
  output logic [WordW-1:0]   wgt_o,
  output logic               valid_o,
  output logic               first_o,
  output logic               last_o
);
  localparam int unsigned Depth = NF * SF;
  localparam int unsigned SfW   = (SF > 1) ? $clog2(SF) : 1;
  localparam int unsigned NfW   = (NF > 1) ? $clog2(NF) : 1;
  localparam int unsigned AddrW = (Depth > 1) ? $clog2(Depth) : 1;
  localparam int unsigned BufW  = InDataW + Simd;

  // ---- weight ROM ----------------------------------------------------------------------------------
  logic [WordW-1:0] rom [Depth];
  initial begin
    if (InitFile != "") $readmemh(InitFile, rom);
  end

  // ---- step counters -------------------------------------------------------------------------------
  logic [SfW-1:0]   sf_q, sf_d;
  logic [NfW-1:0]   nf_q, nf_d;
  logic [AddrW-1:0] addr_q, addr_d;
  logic             from_input, step, sf_last;

  assign from_input = (nf_q == '0);
  assign in_tready  = en_i & from_input;
  assign step       = en_i & (from_input ? in_tvalid : 1'b1);
  assign sf_last    = (sf_q == SfW'(SF - 1));

  always_comb begin
    sf_d   = sf_q;
    nf_d   = nf_q;
    addr_d = addr_q;
    if (step) begin
      sf_d   = sf_last ? '0 : sf_q + SfW'(1);
      addr_d = (addr_q == AddrW'(Depth - 1)) ? '0 : addr_q + AddrW'(1);
      if (sf_last) nf_d = (nf_q == NfW'(NF - 1)) ? '0 : nf_q + NfW'(1);
    end
  end

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      sf_q   <= '0;
      nf_q   <= '0;
      addr_q <= '0;
    end else begin
      sf_q   <= sf_d;
      nf_q   <= nf_d;
      addr_q <= addr_d;
    end
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
  logic valid_q;
  always_ff @(posedge clk_i) begin
    if (!rst_ni) valid_q <= 1'b0;
    else if (en_i) valid_q <= step;
  end

  always_ff @(posedge clk_i) begin
    if (step) begin
      {mask_o, act_o} <= operand;
      wgt_o           <= rom[addr_q];
      first_o         <= (sf_q == '0);
      last_o          <= sf_last;
    end
  end
  assign valid_o = valid_q;
endmodule
