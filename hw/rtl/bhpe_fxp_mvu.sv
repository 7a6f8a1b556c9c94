// Fixed-point matrix-vector unit, folded Pe x Simd (stem conv, full-precision Block Residual 1x1 conv,
// fully-connected layers).
//
// For each output pixel it consumes the window vector of N signed InW-bit elements, Simd elements a beat
// in (ky, kx, c) order, with a mask bit per element (1 = real tap, 0 = zero padding: the element is
// forced to 0, so padding is exact even if the data lane is not 0), and produces Cout signed
// accumulators, Pe lanes a beat in channel order (lane p of beat nf = channel nf*Pe + p):
//   acc[c] = sum_i mask_i * a_i * w[c][i]        (AccW = WW + InW + clog2(N) bits, exact)
// Cycles per pixel: NF*SF with NF = Cout/Pe, SF = N/Simd; pipeline latency 3 cycles.
//
// Weight ROM (InitFile, $readmemh, Depth NF*SF words of Pe*Simd*WW bits): the word at address
// nf*SF + sf holds, at bits [(p*Simd + s)*WW +: WW], the two's-complement weight of output channel
// nf*Pe + p for window element sf*Simd + s.
module bhpe_fxp_mvu #(
  parameter int unsigned N        = 9,
  parameter int unsigned Cout     = 4,
  parameter int unsigned Pe       = 1,
  parameter int unsigned Simd     = 1,
  parameter int unsigned InW      = 8,
  parameter int unsigned WW       = 8,
  parameter int unsigned AccW     = WW + InW + $clog2(N),
  parameter string       InitFile = ""
) (
  input  logic                 clk_i,
  input  logic                 rst_ni,
  input  logic [Simd*InW-1:0]  in_tdata,
  input  logic [Simd-1:0]      in_tmask,
  input  logic                 in_tvalid,
  output logic                 in_tready,
  output logic [Pe*AccW-1:0]   out_tdata,
  output logic                 out_tvalid,
  input  logic                 out_tready
);
  localparam int unsigned NF = Cout / Pe;
  localparam int unsigned SF = N / Simd;

  if (Cout % Pe != 0) begin : gen_bad_pe
    $error("bhpe_fxp_mvu: Pe must divide Cout");
  end
  if (N % Simd != 0) begin : gen_bad_simd
    $error("bhpe_fxp_mvu: Simd must divide N");
  end

  logic en;  // the whole pipeline advances
  logic out_valid_q;
  assign en = ~out_valid_q | out_tready;

  // ---- stage 1: operand and weights ----------------------------------------------------------------
  logic [Simd*InW-1:0]   act1;
  logic [Simd-1:0]       mask1;
  logic [Pe*Simd*WW-1:0] wgt1;
  logic                  valid1, first1, last1;

  bhpe_mvu_fetch #(
    .Simd(Simd), .ElemW(InW), .NF(NF), .SF(SF), .WordW(Pe * Simd * WW), .InitFile(InitFile)
  ) u_fetch (
    .clk_i, .rst_ni, .in_tdata, .in_tmask, .in_tvalid, .in_tready, .en_i(en),
    .act_o(act1), .mask_o(mask1), .wgt_o(wgt1), .valid_o(valid1), .first_o(first1), .last_o(last1)
  );

  // ---- stage 2: Simd products and their sum per PE (balanced adder tree, registered) ----------------
  // Products are sign-extended and summed in AccW bits: two's-complement wrap-around is exact because the final
  // accumulator fits in AccW bits.
  logic signed [AccW-1:0] dot [Pe];
  logic signed [AccW-1:0] dot_q [Pe];
  logic                   valid2_q, first2_q, last2_q;

  for (genvar p = 0; p < Pe; p++) begin : gen_pe_dot
    logic [Simd*AccW-1:0] prods;
    for (genvar s = 0; s < Simd; s++) begin : gen_simd_mul
      logic signed [InW-1:0] a;
      logic signed [WW-1:0]  w;
      logic signed [InW+WW-1:0] prod;  // InW x WW multiplier (one DSP for 8x8 .. 18x25)
      assign a = mask1[s] ? act1[s*InW +: InW] : '0;
      assign w = wgt1[(p*Simd + s)*WW +: WW];
      assign prod = a * w;
      assign prods[s*AccW +: AccW] = AccW'(prod);
    end
    bhpe_adder_tree #(.Count(Simd), .Width(AccW)) u_sum (.terms_i(prods), .sum_o(dot[p]));
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
