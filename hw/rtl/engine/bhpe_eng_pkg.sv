// The layer-sequential engine's shared definitions: the descriptor (docs/engine.md, "Descriptor format") as a
// packed struct, its decoder, and the epilogue op codes. Every engine module reads descriptor fields from here;
// the compiler's encoder is compile/engine/descriptor.py and the two must agree bit for bit.
// Every engine module starts with `ifndef BHPE_ENG_PKG_SV `include "engine/bhpe_eng_pkg.sv" `endif (found
// through -Ihw/rtl, as the library's package is), so that each file compiles on its own; where the package was
// compiled first the include is skipped, and the guard makes a repeated include a no-op (hw/rtl/bhpe_pkg.sv says
// the same of its package). The same holds for the engine's modules: each is include-guarded
// (BHPE_ENG_<NAME>_SV), and a module that instantiates engine modules includes them the same way
// (compile.engine.synth.engine_sources lists them before their users, so that a build skips every include).
`ifndef BHPE_ENG_PKG_SV
`define BHPE_ENG_PKG_SV
package bhpe_eng_pkg;

  // The constants serve the package's users; a file that needs only some of them (or the package linted
  // alone) leaves the others unused.
  /* verilator lint_off UNUSEDPARAM */
  // DRAM word, line/b/output buffer word: 64 bits.
  localparam int unsigned WordW = 64;
  // A descriptor: 32 words of 64 bits (256 bytes): 16 header words, then 16 epilogue op words.
  localparam int unsigned DescWords = 32;
  localparam int unsigned MaxOps = 16;
  // Constant columns of one layer (one 32-bit value per channel and column).
  localparam int unsigned MaxCols = 8;
  localparam int unsigned ConstW = 32;
  // Epilogue value width (every op's input and output fit it; the compiler checks).
  localparam int unsigned ValW = 40;
  // Accumulator width of both arrays (the compiler refuses a layer whose sum may not fit).
  localparam int unsigned AccW = 32;
  /* verilator lint_on UNUSEDPARAM */

  typedef enum logic [3:0] {
    ModeXnorConv = 4'd0,  // binary convolution / FC: XNOR-popcount array, 1-bit input elements
    ModeMacConv  = 4'd1,  // fixed-point convolution / FC: MAC array, 8- or 16-bit input elements
    ModePoolMax  = 4'd2,  // max over the valid taps of each channel
    ModePoolSum  = 4'd3   // sum over the valid taps of each channel (K = 1: a copy through the epilogue)
  } mode_e;

  typedef enum logic [3:0] {
    OpRequant   = 4'd0,
    OpMulShift  = 4'd1,
    OpAddConst  = 4'd2,
    OpPrelu     = 4'd3,
    OpJoinAdd   = 4'd4,
    OpSign      = 4'd5,
    OpThreshold = 4'd6
  } opcode_e;

  // One epilogue op word (descriptor words 16..31).
  typedef struct packed {
    logic [23:0] rsvd;      // [63:40]
    logic        rsvd1;     // [39]
    logic [3:0]  col;       // [38:35] constant column (Threshold: col = threshold, col + 1 = neg flag)
    logic [7:0]  shift_b;   // [34:27] JoinAdd: left shift of b (0..62)
    logic [7:0]  shift_a;   // [26:19] JoinAdd: left shift of the chain value (0..62)
    logic        relu;      // [18]    Requant: max(y, 0) after saturation
    logic [7:0]  shift;     // [17:10] signed: floor shift right (negative: exact left shift)
    logic [5:0]  out_w;     // [9:4]   saturation width of the op's result (1..40)
    logic [3:0]  opcode;    // [3:0]   opcode_e
  } op_t;

  // The decoded header (descriptor words 0..12; 13..15 are reserved and zero). A packed struct's first member
  // is its most significant: the words are listed from w12 down to w0, each word's fields from bit 63 down.
  typedef struct packed {
    // w12
    logic [31:0] out_row_stride; // [63:32] words between output rows in DRAM; 0: ow * out_pix_stride
    logic [23:0] rsvd12;         // [31:8]
    logic [7:0]  pad_x;          // [7:0]   zero padding, left (pad is the top one)
    // w11
    logic [15:0] r;              // [63:48] line-buffer slots used: kh + stride (at most the buffer's slots)
    logic [15:0] slot_words;     // [47:32] line-buffer words of one slot: iwt * cw_in
    logic [15:0] wtile_words;    // [31:16] weight-buffer words of one tile: (ct / PE) * kh * kw * cw_in
    logic [15:0] ng;             // [15:0]  channel groups of PE channels: ceil(cout / PE)
    // w10
    logic [15:0] iwt;            // [63:48] input pixels of a strip: (owt - 1) * stride + kw
    logic [15:0] n_cols;         // [47:32] constant columns loaded for this layer
    logic [15:0] cw_out;         // [31:16] words of one output pixel's cout channels: ceil(cout * ew_out / 64)
    logic [15:0] b_pix_stride;   // [15:0]  words between consecutive b pixels in DRAM
    // w9
    logic [15:0] n_strips;       // [63:48] output column strips
    logic [15:0] owt;            // [47:32] output pixels of a strip (the last strip may be narrower)
    logic [15:0] n_ct;           // [31:16] output-channel tiles
    logic [15:0] ct;             // [15:0]  output channels of a tile (a multiple of PE)
    // w8..w4: byte addresses (multiples of 8)
    logic [63:0] c_addr;         // w8 constants
    logic [63:0] w_addr;         // w7 weights
    logic [63:0] b_addr;         // w6 tensor b, pixel (0, 0), at its channel offset
    logic [63:0] out_addr;       // w5 output tensor, pixel (0, 0), at its channel offset (Concat)
    logic [63:0] in_addr;        // w4 input tensor, pixel (0, 0), at its channel offset (Split)
    // w3
    logic [15:0] out_pix_stride; // [63:48] words between consecutive output pixels in DRAM
    logic [15:0] cout;           // [47:32] output channels of this layer
    logic [15:0] ow;             // [31:16]
    logic [15:0] oh;             // [15:0]
    // w2
    logic [15:0] cw_b;           // [63:48] words of one b pixel's cout channels: ceil(cout * ew_b / 64)
    logic [15:0] cw_in;          // [47:32] words of one input pixel's c_in channels: ceil(c_in * ew_in / 64)
    logic [7:0]  pad;            // [31:24] zero padding, top (left: pad_x; bottom/right follow from oh/ow)
    logic [7:0]  stride;         // [23:16]
    logic [7:0]  kw;             // [15:8]
    logic [7:0]  kh;             // [7:0]
    // w1
    logic [15:0] in_pix_stride;  // [63:48] words between consecutive input pixels in DRAM
    logic [15:0] c_in;           // [47:32] input channels
    logic [15:0] w;              // [31:16] input width
    logic [15:0] h;              // [15:0]  input height
    // w0
    logic [31:0] layer_id;       // [63:32] index of the layer in the program (debug, dbg_layer_o)
    logic [9:0]  rsvd0;          // [31:22]
    logic [4:0]  n_ops;          // [21:17] epilogue ops (0..16)
    logic [2:0]  lg_ew_b;        // [16:14] log2 of the b element container (0: 1 bit, 3: 8, 4: 16, 5: 32)
    logic [2:0]  lg_ew_out;      // [13:11] log2 of the output element container
    logic [2:0]  lg_ew_in;       // [10:8]  log2 of the input element container
    logic        b_signed;       // [7]
    logic        in_signed;      // [6]
    logic        has_b;          // [5]     the epilogue has a JoinAdd reading tensor b
    logic        last;           // [4]     the engine stops (done) after this descriptor
    logic [3:0]  mode;           // [3:0]   mode_e
  } hdr_t;

  typedef struct packed {
    op_t [MaxOps-1:0] ops;   // ops[i] = descriptor word 16 + i
    hdr_t             hdr;
  } desc_t;

  // The descriptor from its 32 words as fetched (word i = words[i]).
  function automatic desc_t decode(input logic [DescWords-1:0][WordW-1:0] words);
    desc_t d;
    d.hdr = hdr_t'({words[12], words[11], words[10], words[9], words[8], words[7], words[6], words[5], words[4],
                    words[3], words[2], words[1], words[0]});
    for (int unsigned i = 0; i < MaxOps; i++) begin
      d.ops[i] = op_t'(words[16 + i]);
    end
    return d;
  endfunction

endpackage

`endif  // BHPE_ENG_PKG_SV
