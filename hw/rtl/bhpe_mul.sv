`ifndef BHPE_PKG_SV
`include "bhpe_pkg.sv"
`endif

// Signed multiplier: p_o = a_i * b_i (AW-bit a, BW-bit b, both two's complement), exact in AW + BW bits.
//   Lut = 0: the * operator, which synthesis maps to DSP blocks;
//   Lut = 1: in logic, not in a DSP block: the BW partial products (a shifted by j where b's bit j is set; the
//            sign bit of b weighs -2^(BW-1), so its partial product is -a shifted) summed in a balanced adder
//            tree of clog2(BW) levels (the leaves zero-padded to a power of two).
//   Pipe = 0: combinational, no register (clk_i unused);
//   Pipe = 1: one register inside, free-running (no enable): p_o is the product of the operands of the
//             cycle before. In logic it holds the root's two children (the last adder comes after it), with a
//             DSP block the product (the block's own output register).
//
// bhpe_epilogue and the fixed-point MVUs (bhpe_mvu_core) pass their MulLut (Epilogue.lut_mul, FxpMvu.lut_mul:
// 1 in the ECP5 builds, compile.folding.multipliers_for_device): on the ECP5-85F the MULT18X18D blocks sit
// in three rows, and the placer put them up to 90 columns or 32 rows from their logic. An epilogue's
// multipliers in logic are pipelined (OpPipe): its 16 x 8 tree from the constant register to the product
// register was the 96.39 MHz run's critical path (2.6 ns logic, 7.8 ns routing through 45 cells and nets).
module bhpe_mul #(
  parameter int unsigned AW   = 8,
  parameter int unsigned BW   = 8,
  parameter bit          Lut  = 1'b0,
  parameter bit          Pipe = 1'b0
) (
  input  logic                    clk_i,
  input  logic signed [AW-1:0]    a_i,
  input  logic signed [BW-1:0]    b_i,
  output logic signed [AW+BW-1:0] p_o
);
  localparam int unsigned PW     = AW + BW;
  localparam int unsigned Levels = bhpe_pkg::clog2_min1(BW);
  localparam int unsigned Leaves = 1 << Levels;

  if (!Lut) begin : gen_dsp
    logic signed [PW-1:0] p;
    assign p = PW'(a_i) * PW'(b_i);
    if (Pipe) begin : gen_pipe
      logic signed [PW-1:0] p_q;
      always_ff @(posedge clk_i) begin
        p_q <= p;
      end
      assign p_o = p_q;
    end else begin : gen_comb
      logic unused_clk;
      assign unused_clk = clk_i;
      assign p_o = p;
    end
  end else begin : gen_lut
    // node k (0 the root): the sum of its children 2k+1 and 2k+2; leaves at Leaves-1 .. 2*Leaves-2
    logic [(2*Leaves-1)*PW-1:0] node;
    logic signed [PW-1:0]       a_ext, a_neg;
    assign a_ext = PW'(a_i);
    assign a_neg = -a_ext;

    for (genvar j = 0; j < Leaves; j++) begin : gen_leaf
      if (j + 1 < BW) begin : gen_pos
        assign node[(Leaves-1+j)*PW +: PW] = b_i[j] ? (a_ext <<< j) : '0;
      end else if (j + 1 == BW) begin : gen_sign
        assign node[(Leaves-1+j)*PW +: PW] = b_i[j] ? (a_neg <<< j) : '0;
      end else begin : gen_pad
        assign node[(Leaves-1+j)*PW +: PW] = '0;
      end
    end
    for (genvar k = 1; k < Leaves - 1; k++) begin : gen_add
      assign node[k*PW +: PW] = node[(2*k+1)*PW +: PW] + node[(2*k+2)*PW +: PW];
    end
    if (Pipe) begin : gen_pipe
      logic [PW-1:0] lo_q, hi_q;  // the root's children, registered
      always_ff @(posedge clk_i) begin
        lo_q <= node[PW +: PW];
        hi_q <= node[2*PW +: PW];
      end
      assign node[PW-1:0] = '0;  // the root is formed after the register
      assign p_o = lo_q + hi_q;
      logic unused_root;
      assign unused_root = ^node[PW-1:0];
    end else begin : gen_comb
      logic unused_clk;
      assign unused_clk = clk_i;
      assign node[PW-1:0] = node[PW +: PW] + node[2*PW +: PW];
      assign p_o = node[PW-1:0];
    end
  end
endmodule
