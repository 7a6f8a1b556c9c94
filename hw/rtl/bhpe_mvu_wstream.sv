// Matrix-vector unit with its weights streamed in (from DRAM through a DMA) instead of held in a ROM:
// the same numerics, folding, operand order and output order as bhpe_xnor_mvu (Binary = 1) and
// bhpe_fxp_mvu (Binary = 0), with one more AXI-Stream input, w_t*, that replaces the weight ROM.
//
//   Binary = 1: acc[c] = 2 * popcount(~(a ^ w[c]) & mask) - popcount(mask)   (InW = WW = 1, range -N..N)
//   Binary = 0: acc[c] = sum_i mask_i * a_i * w[c][i]                         (signed InW x WW, exact)
//
// Weight stream (w_tdata, one weight word a beat, WordW = Pe*Simd*WW bits; WW = 1 when Binary): for every
// output pixel the unit consumes the whole folded matrix once, NF*SF words in the order of the ROM
// addresses of the other MVUs: word nf*SF + sf (nf = 0..NF-1 outer, sf = 0..SF-1 inner) holds in slot
// p*Simd + s (slot 0 in the LSBs; bits [(p*Simd + s)*WW +: WW]) the weight of output channel nf*Pe + p for
// window element sf*Simd + s (1 = +1, 0 = -1 when Binary; two's complement otherwise). Pixels follow each
// other in raster order and frames back to back, with no header: pixels*NF*SF words a frame.
//
// One step of the folded matrix (one weight word) a cycle when both streams keep up: a pixel costs NF*SF
// cycles, or more when the weight stream delivers less than one word a cycle (then it sets the rate).
// A step takes a weight beat and, in neuron fold 0, an input beat in the same cycle: in_tready waits for
// w_tvalid and w_tready waits for in_tvalid there (AXI-Stream allows ready to depend on valid; no valid
// depends on a ready). Pipeline latency 3 cycles, as the ROM units.
module bhpe_mvu_wstream #(
  parameter bit          Binary = 1'b1,
  parameter int unsigned N      = 9,
  parameter int unsigned Cout   = 4,
  parameter int unsigned Pe     = 1,
  parameter int unsigned Simd   = 1,
  parameter int unsigned InW    = 1,
  parameter int unsigned WW     = 1,
  parameter int unsigned AccW   = Binary ? ($clog2(N + 1) + 1) : (WW + InW + $clog2(N)),
  localparam int unsigned WordW = Pe * Simd * WW,
  localparam int unsigned DataW = Simd * InW
) (
  input  logic               clk_i,
  input  logic               rst_ni,
  input  logic [DataW-1:0]   in_tdata,
  input  logic [Simd-1:0]    in_tmask,
  input  logic               in_tvalid,
  output logic               in_tready,
  input  logic [WordW-1:0]   w_tdata,
  input  logic               w_tvalid,
  output logic               w_tready,
  output logic [Pe*AccW-1:0] out_tdata,
  output logic               out_tvalid,
  input  logic               out_tready
);
  localparam int unsigned NF   = Cout / Pe;
  localparam int unsigned SF   = N / Simd;
  localparam int unsigned SfW  = (SF > 1) ? $clog2(SF) : 1;
  localparam int unsigned NfW  = (NF > 1) ? $clog2(NF) : 1;
  localparam int unsigned BufW = DataW + Simd;

  if (Cout % Pe != 0) begin : gen_bad_pe
    $error("bhpe_mvu_wstream: Pe must divide Cout");
  end
  if (N % Simd != 0) begin : gen_bad_simd
    $error("bhpe_mvu_wstream: Simd must divide N");
  end
  if (Binary && (InW != 1 || WW != 1)) begin : gen_bad_binary
    $error("bhpe_mvu_wstream: Binary needs InW = WW = 1");
  end

  logic en;  // the whole pipeline advances
  logic out_valid_q;
  assign en = ~out_valid_q | out_tready;

  // ---- stage 1: step counters, operand (input or buffer) and the streamed weight word ----------------
  logic [SfW-1:0] sf_q;
  logic [NfW-1:0] nf_q;
  logic           from_input, step, sf_last;

  assign from_input = (nf_q == '0);
  assign sf_last    = (sf_q == SfW'(SF - 1));
  assign step       = en & w_tvalid & (~from_input | in_tvalid);
  assign in_tready  = en & from_input & w_tvalid;
  assign w_tready   = en & (~from_input | in_tvalid);

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      sf_q <= '0;
      nf_q <= '0;
    end else if (step) begin
      sf_q <= sf_last ? '0 : sf_q + SfW'(1);
      if (sf_last) nf_q <= (nf_q == NfW'(NF - 1)) ? '0 : nf_q + NfW'(1);
    end
  end

  logic [BufW-1:0] operand;
  if (NF > 1) begin : gen_buffer  // the pixel's SF input beats, reused by neuron folds 1..NF-1
    logic [BufW-1:0] buf_q [SF];
    always_ff @(posedge clk_i) begin
      if (step && from_input) buf_q[sf_q] <= {in_tmask, in_tdata};
    end
    assign operand = from_input ? {in_tmask, in_tdata} : buf_q[sf_q];
  end else begin : gen_no_buffer
    assign operand = {in_tmask, in_tdata};
  end

  logic [DataW-1:0] act1;
  logic [Simd-1:0]  mask1;
  logic [WordW-1:0] wgt1;
  logic             valid1, first1, last1;

  always_ff @(posedge clk_i) begin
    if (!rst_ni) valid1 <= 1'b0;
    else if (en) valid1 <= step;
  end
  always_ff @(posedge clk_i) begin
    if (step) begin
      {mask1, act1} <= operand;
      wgt1          <= w_tdata;
      first1        <= (sf_q == '0);
      last1         <= sf_last;
    end
  end

  // ---- stage 2: per-PE dot product of one synapse fold (registered) ---------------------------------
  logic signed [AccW-1:0] dot [Pe];
  logic signed [AccW-1:0] dot_q [Pe];
  logic                   valid2_q, first2_q, last2_q;

  if (Binary) begin : gen_xnor
    localparam int unsigned CntW = $clog2(Simd + 1);
    logic [CntW-1:0] pcm;
    bhpe_popcount #(.Width(Simd)) u_pcm (.bits_i(mask1), .count_o(pcm));
    for (genvar p = 0; p < Pe; p++) begin : gen_pe
      logic [Simd-1:0] agree;
      logic [CntW-1:0] pc;
      assign agree = ~(act1 ^ wgt1[p*Simd +: Simd]) & mask1;
      bhpe_popcount #(.Width(Simd)) u_pc (.bits_i(agree), .count_o(pc));
      assign dot[p] = (AccW'(pc) << 1) - AccW'(pcm);  // 2*agree - valid, in -Simd..Simd
    end
  end else begin : gen_fxp
    for (genvar p = 0; p < Pe; p++) begin : gen_pe
      logic [Simd*AccW-1:0] prods;
      for (genvar s = 0; s < Simd; s++) begin : gen_simd_mul
        logic signed [InW-1:0]    a;
        logic signed [WW-1:0]     w;
        logic signed [InW+WW-1:0] prod;
        assign a = mask1[s] ? act1[s*InW +: InW] : '0;
        assign w = wgt1[(p*Simd + s)*WW +: WW];
        assign prod = a * w;
        assign prods[s*AccW +: AccW] = AccW'(prod);
      end
      bhpe_adder_tree #(.Count(Simd), .Width(AccW)) u_sum (.terms_i(prods), .sum_o(dot[p]));
    end
  end

  always_ff @(posedge clk_i) begin
    if (!rst_ni) valid2_q <= 1'b0;
    else if (en) valid2_q <= valid1;
  end
  always_ff @(posedge clk_i) begin
    if (en && valid1) begin
      dot_q    <= dot;
      first2_q <= first1;
      last2_q  <= last1;
    end
  end

  // ---- stage 3: accumulate, hand a beat to the output register on the last synapse fold ------------
  logic [AccW-1:0] acc_q [Pe];
  logic [AccW-1:0] acc_d [Pe];
  logic [AccW-1:0] out_q [Pe];

  always_comb begin
    for (int p = 0; p < Pe; p++) begin
      acc_d[p] = (first2_q ? '0 : acc_q[p]) + dot_q[p];
    end
  end

  always_ff @(posedge clk_i) begin
    if (!rst_ni) out_valid_q <= 1'b0;
    else if (en) out_valid_q <= valid2_q & last2_q;
  end
  always_ff @(posedge clk_i) begin
    if (en && valid2_q) begin
      acc_q <= acc_d;
      if (last2_q) out_q <= acc_d;
    end
  end

  assign out_tvalid = out_valid_q;
  for (genvar p = 0; p < Pe; p++) begin : gen_out_lane
    assign out_tdata[p*AccW +: AccW] = out_q[p];
  end
endmodule
