// Binary (XNOR-popcount) matrix-vector unit, folded Pe x Simd.
//
// For each output pixel it consumes the window vector of N bits (1 = +1, 0 = -1), Simd elements a beat
// in (ky, kx, c) order, with a mask bit per element (1 = real tap, 0 = zero padding), and produces Cout
// signed accumulators, Pe lanes a beat in channel order (lane p of beat nf = channel nf*Pe + p):
//   acc[c] = 2 * popcount(~(a ^ w[c]) & mask) - popcount(mask)        (range -N..N, AccW bits)
// Cycles per pixel: NF*SF with NF = Cout/Pe, SF = N/Simd; pipeline latency 3 cycles.
//
// Weight ROM (InitFile, $readmemh, Depth NF*SF words of Pe*Simd bits): the word at address nf*SF + sf
// holds, at bit p*Simd + s, the weight (1 = +1, 0 = -1) of output channel nf*Pe + p for window element
// sf*Simd + s.
module bhpe_xnor_mvu #(
  parameter int unsigned N        = 9,
  parameter int unsigned Cout     = 4,
  parameter int unsigned Pe       = 1,
  parameter int unsigned Simd     = 1,
  parameter int unsigned AccW     = $clog2(N + 1) + 1,
  parameter string       InitFile = ""
) (
  input  logic                 clk_i,
  input  logic                 rst_ni,
  input  logic [Simd-1:0]      in_tdata,
  input  logic [Simd-1:0]      in_tmask,
  input  logic                 in_tvalid,
  output logic                 in_tready,
  output logic [Pe*AccW-1:0]   out_tdata,
  output logic                 out_tvalid,
  input  logic                 out_tready
);
  localparam int unsigned NF   = Cout / Pe;
  localparam int unsigned SF   = N / Simd;
  localparam int unsigned CntW = $clog2(Simd + 1);

  if (Cout % Pe != 0) begin : gen_bad_pe
    $error("bhpe_xnor_mvu: Pe must divide Cout");
  end
  if (N % Simd != 0) begin : gen_bad_simd
    $error("bhpe_xnor_mvu: Simd must divide N");
  end

  logic en;  // the whole pipeline advances
  logic out_valid_q;
  assign en = ~out_valid_q | out_tready;

  // ---- stage 1: operand and weights ----------------------------------------------------------------
  logic [Simd-1:0]    act1, mask1;
  logic [Pe*Simd-1:0] wgt1;
  logic               valid1, first1, last1;

  bhpe_mvu_fetch #(
    .Simd(Simd), .ElemW(1), .NF(NF), .SF(SF), .WordW(Pe * Simd), .InitFile(InitFile)
  ) u_fetch (
    .clk_i, .rst_ni, .in_tdata, .in_tmask, .in_tvalid, .in_tready, .en_i(en),
    .act_o(act1), .mask_o(mask1), .wgt_o(wgt1), .valid_o(valid1), .first_o(first1), .last_o(last1)
  );

  // ---- stage 2: XNOR + popcount per PE (registered) ------------------------------------------------
  logic [CntW-1:0] pc [Pe];
  logic [CntW-1:0] pc_q [Pe];
  logic [CntW-1:0] pcm, pcm_q;
  logic            valid2_q, first2_q, last2_q;

  for (genvar p = 0; p < Pe; p++) begin : gen_pe_popcount
    logic [Simd-1:0] agree;
    assign agree = ~(act1 ^ wgt1[p*Simd +: Simd]) & mask1;
    bhpe_popcount #(.Width(Simd)) u_pc (.bits_i(agree), .count_o(pc[p]));
  end
  bhpe_popcount #(.Width(Simd)) u_pcm (.bits_i(mask1), .count_o(pcm));

  always_ff @(posedge clk_i) begin
    if (!rst_ni) valid2_q <= 1'b0;
    else if (en) valid2_q <= valid1;
  end
  always_ff @(posedge clk_i) begin
    if (en && valid1) begin
      pc_q     <= pc;
      pcm_q    <= pcm;
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
      acc_d[p] = (first2_q ? '0 : acc_q[p]) + (AccW'(pc_q[p]) << 1) - AccW'(pcm_q);
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
