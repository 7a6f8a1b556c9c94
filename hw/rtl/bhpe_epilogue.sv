`ifndef BHPE_PKG_SV
`include "bhpe_pkg.sv"
`endif

// Fused epilogue: a chain of NumOps per-channel operations (compile/kinds/epilogue.py, class Epilogue) as
// one streaming unit with one constant ROM, one channel-group counter and one valid/ready handshake.
//
// Streams (lane 0 in the LSBs, raster order, C channels a pixel, Lanes divides C):
//   in_*  : Lanes signed InW-bit elements a beat, the chain input;
//   b_*   : Lanes signed InBW-bit elements a beat, the JoinAdd's second operand (HasB = 1); a beat is taken
//           from b together with the chain input, never alone, and travels with it to the JoinAdd's stage.
//           With HasB = 0 b_tdata/b_tvalid are ignored and b_tready is 0;
//   out_* : Lanes OutW-bit elements a beat.
//
// Ops: field i (FieldW = 16 bits, op 0 in the LSBs) of each packed parameter describes op i:
//   OpKind  0 Requant        y = sat(x >>> Shift), then max(y, 0) when Aux = 1
//           1 MulShift       y = sat((m_c * x) >>> Shift)                    (constant: m, CW bits)
//           2 AddConst       y = sat(x + b_c)                                 (constant: b, CW bits)
//           3 Prelu          y = x > 0 ? sat(x) : sat((beta_c * x) >>> Shift) (constant: beta, CW bits)
//           4 JoinAdd        y = sat((x <<< Shift) + (b <<< Aux))             (b from the b_* stream)
//           5 Sign           y = x >= 0 (1 bit)
//           6 Threshold      y = dir ? x <= T_c : x >= T_c (1 bit; entry {dir, T_c}, T_c Aux bits)
//           7 MultiThreshold y = Shift + #{j : x >= T_c,j}, CW / Aux thresholds of Aux bits (OutW bits, modulo
//                            2^OutW: the compiler keeps Shift + CW / Aux within the output's range)
//           8 Mul            y = (m_c * x) <<< max(-Shift, 0), exact (OutW = InW + CW + the left shift):
//                            the product half of a MulShift, registered, followed by a Requant
//           9 PreluMul       y = x > 0 ? x <<< max(Shift, 0) : (beta_c * x) <<< max(-Shift, 0), exact:
//                            the product half of a Prelu, registered, followed by a Requant
//   OpOutW  the op's output width (its input width is the previous op's output width, op 0's is InW);
//   OpShift a signed shift (negative: an exact left shift); OpAux as above;
//   OpCW    constant bits a lane (0: none); OpCOff its offset (per lane) in the ROM entry;
//   OpReg   bit i: a register after op i (set after every multiplying op and after the last op);
//   OpPipe  bit i: op i (a Mul or PreluMul, registered) has a second register inside its multiplier
//           (bhpe_mul Pipe = 1: the root's two children of its adder tree in logic), one stage more.
// MulLut: ops 8 and 9 multiply in logic (bhpe_mul with Lut = 1, an adder tree of partial products), not in a
// DSP block.
// Every sat is a saturation to the op's OutW signed range (bhpe_epi_sat), exactly as the op's Python kind.
//
// Constant ROM (InitFile, $readmemh): C/Lanes words of Lanes*CTot bits, op-major: op i's constants
// (Lanes entries of CW bits, lane 0 in the LSBs) at bit Lanes*COff of the word. One channel-group counter
// at the input; the group index travels with each beat through the stage registers, and every stage reads
// its own ops' columns of the word into a register (synchronous read: block RAM or distributed ROM) as its
// beat enters the register before it, so each constant bit is registered once, not carried along the
// pipeline. Stage 0 has no constants (the compiler puts a register of the input before a first op with them).
//
// Pipeline: one stage per register (OpReg, OpPipe), free-running (every stage register loads each cycle; a
// valid bit travels beside it), then an output FIFO of Cap = stages + 3 entries; a beat is accepted while
// fewer than Cap beats are between the input and the FIFO's read side (credits): latency = number of
// registers + 1, one beat a cycle, Cap beats of buffer. The compiler registers every op
// (compile/kinds/epilogue.py REGISTERED_AFTER).
module bhpe_epilogue #(
  parameter int unsigned  Lanes    = 1,
  parameter int unsigned  C        = 1,
  parameter int unsigned  NumOps   = 1,
  parameter int unsigned  InW      = 16,
  parameter int unsigned  InBW     = 1,
  parameter int unsigned  OutW     = 16,
  parameter bit           HasB     = 1'b0,
  parameter logic [255:0] OpKind   = 256'd0,
  parameter logic [255:0] OpOutW   = 256'd16,
  parameter logic [255:0] OpShift  = 256'd0,
  parameter logic [255:0] OpAux    = 256'd0,
  parameter logic [255:0] OpCW     = 256'd0,
  parameter logic [255:0] OpCOff   = 256'd0,
  parameter logic [15:0]  OpReg    = 16'd1,
  parameter logic [15:0]  OpPipe   = 16'd0,
  parameter bit           MulLut   = 1'b0,
  parameter string        InitFile = ""
) (
  input  logic                  clk_i,
  input  logic                  rst_ni,
  input  logic [Lanes*InW-1:0]  in_tdata,
  input  logic                  in_tvalid,
  output logic                  in_tready,
  input  logic [Lanes*InBW-1:0] b_tdata,
  input  logic                  b_tvalid,
  output logic                  b_tready,
  output logic [Lanes*OutW-1:0] out_tdata,
  output logic                  out_tvalid,
  input  logic                  out_tready
);
  localparam int unsigned FieldW = 16;
  localparam int unsigned SlotW  = 64;  // widest element of any op (the kinds allow up to 64 bits)
  localparam int unsigned Depth  = C / Lanes;

  // number of registers before op i (= the stage op i belongs to)
  function automatic int unsigned stage_of(input int unsigned i);  // the first stage of op i
    int unsigned s;
    s = 0;
    for (int unsigned j = 0; j < i; j++) begin
      s = s + 32'(OpReg[j]) + 32'(OpPipe[j]);
    end
    return s;
  endfunction

  // the stage of the JoinAdd op (0 when there is none)
  function automatic int unsigned join_stage();
    int unsigned s;
    s = 0;
    for (int unsigned j = 0; j < NumOps; j++) begin
      if (OpKind[j*FieldW +: FieldW] == 16'd4) s = stage_of(j);
    end
    return s;
  endfunction

  localparam int unsigned NumStages = stage_of(NumOps);
  localparam int unsigned JoinStage = join_stage();
  localparam int unsigned LastCOff  = 32'(OpCOff[(NumOps-1)*FieldW +: FieldW]);
  localparam int unsigned LastCW    = 32'(OpCW[(NumOps-1)*FieldW +: FieldW]);
  localparam int unsigned CTot      = LastCOff + LastCW;        // constant bits a lane
  localparam int unsigned CWordW    = (CTot > 0) ? Lanes * CTot : 1;

  if (Lanes == 0 || C % Lanes != 0) begin : gen_bad_lanes
    $error("bhpe_epilogue: Lanes must divide C");
  end
  if (NumOps == 0 || NumOps > 16 || !OpReg[NumOps-1] || 32'(OpOutW[(NumOps-1)*FieldW +: FieldW]) != OutW)
  begin : gen_bad_ops
    $error("bhpe_epilogue: 1 to 16 ops, the last one registered and OutW bits wide");
  end

  // ---- buses between ops ------------------------------------------------------------------------------
  // val slot i (i <= NumOps): op i's input (slot 0 = in_tdata), SlotW bits a lane, the element in the low bits
  logic [(NumOps+1)*Lanes*SlotW-1:0] val;
  // cview slot s: the constant word as stage s sees it (its own ops' columns, zeros elsewhere)
  logic [NumStages*CWordW-1:0]       cview;
  // per stage: a beat enters its register this cycle (the valid of its input), its register's valid
  logic [NumStages-1:0]              st_valid_q;

  for (genvar l = 0; l < Lanes; l++) begin : gen_in
    assign val[l*SlotW +: SlotW] = SlotW'($signed(in_tdata[l*InW +: InW]));
  end

  // ---- constant ROM, channel-group counter, per-stage constant registers -----------------------------
  // One ROM image; stage s (s >= 1) reads its ops' columns (bits Lanes*CLo(s) up to Lanes*CHi(s)) into a
  // register, synchronously, in the cycle the beat it will work on enters register s-1: at that beat's channel
  // group, with that register's enable. So the read address is a register (the group index travelling with
  // the data, one counter at the input) and the handshake reaches only the read register's enable, as it does
  // every data register's. Stage 0 reads no constants: the compiler registers the input first when the first
  // op has constants (compile/kinds/epilogue.py, Epilogue.rtl_ops).
  localparam int unsigned AddrW = bhpe_pkg::clog2_min1(Depth);

  // the first op that starts at this stage or after it (a pipelined op's second stage starts none)
  function automatic int unsigned first_op(input int unsigned stage);
    int unsigned f;
    f = NumOps;
    for (int unsigned j = NumOps; j > 0; j--) begin
      if (stage_of(j - 1) >= stage) f = j - 1;
    end
    return f;
  endfunction

  function automatic int unsigned c_lo(input int unsigned stage);  // first constant bit (a lane) of a stage
    return (stage >= NumStages) ? CTot : 32'(OpCOff[first_op(stage)*FieldW +: FieldW]);
  endfunction

  if (CTot > 0 && c_lo(1) > 0) begin : gen_bad_first_stage
    $error("bhpe_epilogue: stage 0 reads constants; the first op with constants must follow a register");
  end

  logic [AddrW-1:0]           grp_q;   // channel group of the beat at the input
  logic [NumStages*AddrW-1:0] sgrp_q;  // per register: the channel group of the beat it holds
  logic [NumStages*AddrW-1:0] sgin;    // per stage: the channel group of the beat at its input

  if (CTot > 0) begin : gen_rom
    logic [CWordW-1:0] rom [Depth];
    initial begin
      if (InitFile != "") $readmemh(InitFile, rom);
    end
    for (genvar s = 0; s < NumStages; s++) begin : gen_read
      localparam int unsigned Lo = Lanes * c_lo(s);
      localparam int unsigned Hi = Lanes * c_lo(s + 1);
      if (s > 0 && Hi > Lo) begin : gen_cols
        logic [Hi-Lo-1:0] c_q;
        always_ff @(posedge clk_i) begin
          c_q <= rom[sgin[(s-1)*AddrW +: AddrW]][Lo +: Hi - Lo];
        end
        if (Lo > 0 && Hi < CWordW) begin : gen_mid
          assign cview[s*CWordW +: CWordW] = {{(CWordW - Hi){1'b0}}, c_q, {Lo{1'b0}}};
        end else if (Lo > 0) begin : gen_top
          assign cview[s*CWordW +: CWordW] = {c_q, {Lo{1'b0}}};
        end else if (Hi < CWordW) begin : gen_bottom
          assign cview[s*CWordW +: CWordW] = {{(CWordW - Hi){1'b0}}, c_q};
        end else begin : gen_all
          assign cview[s*CWordW +: CWordW] = c_q;
        end
      end else begin : gen_none
        assign cview[s*CWordW +: CWordW] = '0;
      end
    end
  end else begin : gen_no_rom
    assign cview = '0;
  end

  assign sgin = (NumStages*AddrW)'({sgrp_q, grp_q});  // stage s's input: register s-1 (stage 0: the counter)
  always_ff @(posedge clk_i) begin
    sgrp_q <= sgin;
  end

  // ---- handshake: credits, a free-running pipeline, an output FIFO ------------------------------------
  // A beat is accepted (with its JoinAdd operand, when there is one) only while the unit holds fewer than
  // Cap beats between its input and its output FIFO's read side; then it never waits inside: every stage
  // register loads each cycle, and the output FIFO (Cap entries) always has room. out_tready reaches only the
  // FIFO and the credit counter, both registers, so no ready chain runs through the stages (on ECP5 such a
  // chain, downstream FIFO -> Fork -> the stage enables, was the whole design's critical path).
  localparam int unsigned Cap  = NumStages + 3;  // the pipeline full, one beat in the FIFO, one being read
  localparam int unsigned OccW = bhpe_pkg::count_width(Cap);

  logic [OccW-1:0]       occ_q;     // beats accepted and not yet read from the output FIFO
  logic                  credit, fifo_in_ready;
  logic [Lanes*OutW-1:0] res;       // the last register: the FIFO's input

  assign credit = (occ_q < OccW'(Cap));
  if (HasB) begin : gen_b_ready
    assign in_tready = b_tvalid & credit;
    assign b_tready  = in_tvalid & credit;
  end else begin : gen_no_b_ready
    assign in_tready = credit;
    assign b_tready  = 1'b0;
  end

  // The handshake's state in one process, the beats taken in and out local to it (a simulator keeps them
  // there): the input's channel group, the credit count, and the valid bits, a shift register beside the
  // stage registers (stage s's input: register s-1's bit).
  always_ff @(posedge clk_i) begin : p_ctl
    logic in_fire, out_fire;
    in_fire  = in_tvalid & in_tready;  // with a JoinAdd, in_tready holds b_tvalid: the two are taken together
    out_fire = out_tvalid & out_tready;
    if (!rst_ni) begin
      grp_q      <= '0;
      occ_q      <= '0;
      st_valid_q <= '0;
    end else begin
      if (in_fire) grp_q <= (grp_q == AddrW'(Depth - 1)) ? '0 : grp_q + AddrW'(1);
      if (in_fire != out_fire) occ_q <= in_fire ? occ_q + OccW'(1) : occ_q - OccW'(1);
      st_valid_q <= NumStages'({st_valid_q, in_fire});
    end
  end

  // the JoinAdd operand, taken with the chain input, travels with its beat to the JoinAdd's stage
  logic [(JoinStage+1)*Lanes*InBW-1:0] bin;  // slot s: the operand of the beat at stage s's input
  assign bin[0 +: Lanes*InBW] = b_tdata;
  for (genvar s = 1; s <= JoinStage; s++) begin : gen_b_delay
    logic [Lanes*InBW-1:0] b_q;
    always_ff @(posedge clk_i) begin
      b_q <= bin[(s-1)*Lanes*InBW +: Lanes*InBW];
    end
    assign bin[s*Lanes*InBW +: Lanes*InBW] = b_q;
  end

  bhpe_fifo #(.Width(Lanes*OutW), .Depth(Cap)) u_out_fifo (
    .clk_i, .rst_ni,
    .in_tdata(res), .in_tvalid(st_valid_q[NumStages-1]), .in_tready(fifo_in_ready),
    .out_tdata, .out_tvalid, .out_tready
  );

  // ---- the ops ----------------------------------------------------------------------------------------
  for (genvar i = 0; i < NumOps; i++) begin : gen_op
    localparam int unsigned Kind = 32'(OpKind[i*FieldW +: FieldW]);
    localparam int unsigned IW   = (i == 0) ? InW : 32'(OpOutW[(i-1)*FieldW +: FieldW]);
    localparam int unsigned OW   = 32'(OpOutW[i*FieldW +: FieldW]);
    localparam int          Sh   = int'($signed(OpShift[i*FieldW +: FieldW]));
    localparam int unsigned Aux  = 32'(OpAux[i*FieldW +: FieldW]);
    localparam int unsigned CW   = 32'(OpCW[i*FieldW +: FieldW]);
    localparam int unsigned COff = 32'(OpCOff[i*FieldW +: FieldW]);
    localparam int unsigned Stg  = stage_of(i);
    localparam int unsigned LSh  = (Sh < 0) ? 32'(-Sh) : 32'd0;
    localparam int unsigned RSh  = (Sh > 0) ? 32'(Sh) : 32'd0;

    if (OpPipe[i] && !((Kind == 8 || Kind == 9) && OpReg[i])) begin : gen_bad_pipe
      $error("bhpe_epilogue: OpPipe marks a registered Mul or PreluMul only");
    end

    logic [Lanes*OW-1:0] y;     // the op's result (combinational)
    logic [CWordW-1:0]   cw;    // the constant word of this op's stage
    assign cw = cview[Stg*CWordW +: CWordW];
    logic unused_cw;  // the word holds every op's constants; this op reads its own
    assign unused_cw = ^cw;

    for (genvar l = 0; l < Lanes; l++) begin : gen_lane
      logic signed [IW-1:0] x;
      assign x = val[(i*Lanes + l)*SlotW +: IW];

      if (Kind == 0) begin : gen_requant
        localparam int unsigned WideW = IW + LSh;
        logic signed [OW-1:0] ys;
        // (x <<< LSh) >>> RSh as bit selects (one of the two shifts is 0): a simulator copies bits instead of
        // calling a general arithmetic shift; a right shift saturates the kept bits x[IW-1:RSh] as they are
        // (the sign extension to IW bits would not change which values fit)
        if (RSh >= IW) begin : gen_all_sign
          logic unused_low;  // every bit but the sign is shifted out
          assign unused_low = ^x;
          assign ys = {OW{x[IW-1]}};
        end else if (RSh > 0) begin : gen_right
          logic unused_low;  // the bits shifted out
          assign unused_low = ^x[RSh-1:0];
          bhpe_epi_sat #(.InW(IW - RSh), .OutW(OW)) u_sat (.in_i(x[IW-1:RSh]), .out_o(ys));
        end else if (LSh > 0) begin : gen_left
          logic signed [WideW-1:0] wide;
          assign wide = {x, {LSh{1'b0}}};
          bhpe_epi_sat #(.InW(WideW), .OutW(OW)) u_sat (.in_i(wide), .out_o(ys));
        end else begin : gen_none
          bhpe_epi_sat #(.InW(IW), .OutW(OW)) u_sat (.in_i(x), .out_o(ys));
        end
        assign y[l*OW +: OW] = (Aux != 0 && ys[OW-1]) ? '0 : ys;
      end else if (Kind == 1) begin : gen_mulshift
        localparam int unsigned ProdW = IW + CW;
        localparam int unsigned WideW = ProdW + LSh;
        logic signed [CW-1:0]    m;
        logic signed [ProdW-1:0] prod;
        logic signed [WideW-1:0] wide;
        assign m    = cw[Lanes*COff + l*CW +: CW];
        assign prod = ProdW'(x) * ProdW'(m);
        assign wide = (WideW'(prod) <<< LSh) >>> RSh;
        bhpe_epi_sat #(.InW(WideW), .OutW(OW)) u_sat (.in_i(wide), .out_o(y[l*OW +: OW]));
      end else if (Kind == 8) begin : gen_mul
        localparam int unsigned ProdW = IW + CW;
        logic signed [CW-1:0]    m;
        logic signed [ProdW-1:0] prod;
        assign m = cw[Lanes*COff + l*CW +: CW];
        bhpe_mul #(.AW(IW), .BW(CW), .Lut(MulLut), .Pipe(OpPipe[i])) u_mul (
          .clk_i, .a_i(x), .b_i(m), .p_o(prod)
        );
        assign y[l*OW +: OW] = OW'(OW'(prod) <<< LSh);
      end else if (Kind == 9) begin : gen_prelu_mul
        localparam int unsigned ProdW = IW + CW;
        logic signed [CW-1:0]    beta;
        logic signed [ProdW-1:0] prod;
        logic signed [IW-1:0]    xs;  // x beside the product: a pipelined multiplier's one cycle later
        assign beta = cw[Lanes*COff + l*CW +: CW];
        bhpe_mul #(.AW(IW), .BW(CW), .Lut(MulLut), .Pipe(OpPipe[i])) u_mul (
          .clk_i, .a_i(x), .b_i(beta), .p_o(prod)
        );
        if (OpPipe[i]) begin : gen_x_pipe
          always_ff @(posedge clk_i) begin
            xs <= x;
          end
        end else begin : gen_x
          assign xs = x;
        end
        // x > 0: not negative and not zero
        assign y[l*OW +: OW] = (!xs[IW-1] && (xs != '0)) ? OW'(OW'(xs) <<< RSh) : OW'(OW'(prod) <<< LSh);
      end else if (Kind == 2) begin : gen_addconst
        localparam int unsigned SumW = ((IW > CW) ? IW : CW) + 1;
        logic signed [CW-1:0]   b;
        logic signed [SumW-1:0] sum;
        assign b   = cw[Lanes*COff + l*CW +: CW];
        assign sum = SumW'(x) + SumW'(b);
        bhpe_epi_sat #(.InW(SumW), .OutW(OW)) u_sat (.in_i(sum), .out_o(y[l*OW +: OW]));
      end else if (Kind == 3) begin : gen_prelu
        localparam int unsigned ProdW = IW + CW;
        localparam int unsigned WideW = ProdW + LSh;
        logic signed [CW-1:0]    beta;
        logic signed [ProdW-1:0] prod;
        logic signed [WideW-1:0] wide;
        logic signed [OW-1:0]    y_pos, y_neg;
        assign beta = cw[Lanes*COff + l*CW +: CW];
        assign prod = ProdW'(x) * ProdW'(beta);
        assign wide = (WideW'(prod) <<< LSh) >>> RSh;
        bhpe_epi_sat #(.InW(IW),    .OutW(OW)) u_sat_pos (.in_i(x),    .out_o(y_pos));
        bhpe_epi_sat #(.InW(WideW), .OutW(OW)) u_sat_neg (.in_i(wide), .out_o(y_neg));
        // x > 0: not negative and not zero
        assign y[l*OW +: OW] = (!x[IW-1] && (x != '0)) ? y_pos : y_neg;
      end else if (Kind == 4) begin : gen_joinadd
        localparam int unsigned WA   = IW + 32'(Sh);
        localparam int unsigned WB   = InBW + Aux;
        localparam int unsigned SumW = ((WA > WB) ? WA : WB) + 1;
        logic signed [InBW-1:0] b;
        logic signed [SumW-1:0] sum;
        assign b   = bin[JoinStage*Lanes*InBW + l*InBW +: InBW];
        assign sum = (SumW'(x) <<< 32'(Sh)) + (SumW'(b) <<< Aux);
        bhpe_epi_sat #(.InW(SumW), .OutW(OW)) u_sat (.in_i(sum), .out_o(y[l*OW +: OW]));
      end else if (Kind == 5) begin : gen_sign
        logic unused_x;  // only the sign bit matters
        assign unused_x = ^x;
        assign y[l*OW +: OW] = OW'(~x[IW-1]);
      end else if (Kind == 6) begin : gen_threshold
        localparam int unsigned CmpW = (IW > Aux) ? IW : Aux;
        logic signed [Aux-1:0]  thr;
        logic                   dir;
        logic signed [CmpW-1:0] xe, te;
        assign thr = cw[Lanes*COff + l*CW +: Aux];
        assign dir = cw[Lanes*COff + l*CW + Aux];
        assign xe  = CmpW'(x);
        assign te  = CmpW'(thr);
        assign y[l*OW +: OW] = OW'(dir ? (xe <= te) : (xe >= te));
      end else begin : gen_multithreshold
        localparam int unsigned NumThr = (Aux == 0) ? 1 : CW / Aux;  // thresholds a channel
        localparam int unsigned CmpW   = (IW > Aux) ? IW : Aux;
        localparam logic [OW-1:0] Offs = OW'(Sh);  // the signed offset, modulo 2^OW
        logic signed [CmpW-1:0] xe;
        logic [NumThr-1:0]      ge;
        logic [OW-1:0]          count;
        assign xe = CmpW'(x);
        for (genvar t = 0; t < NumThr; t++) begin : gen_thr
          logic signed [Aux-1:0] thr;
          assign thr   = cw[Lanes*COff + l*CW + t*Aux +: Aux];
          assign ge[t] = (xe >= CmpW'(thr));
        end
        always_comb begin
          count = Offs;
          for (int unsigned t = 0; t < NumThr; t++) begin
            count = count + OW'(ge[t]);
          end
        end
        assign y[l*OW +: OW] = count;
      end
    end

    // ---- op i's output: registered (the end of stage Stg) or passed on --------------------------------
    logic [Lanes*OW-1:0] yv;
    if (OpReg[i]) begin : gen_reg
      logic [Lanes*OW-1:0] y_q;
      always_ff @(posedge clk_i) begin
        y_q <= y;
      end
      assign yv = y_q;
    end else begin : gen_comb
      assign yv = y;
    end
    for (genvar l = 0; l < Lanes; l++) begin : gen_out
      assign val[((i+1)*Lanes + l)*SlotW +: SlotW] = SlotW'(yv[l*OW +: OW]);
    end
    if (i == NumOps - 1) begin : gen_result
      assign res = yv;  // registered: the last op always is
    end
  end


  // the buses carry bits no op reads (slot padding, earlier ops' constants, b without a JoinAdd)
  logic unused_bits;
  assign unused_bits = ^{val, cview, sgrp_q, bin, b_tvalid};

  // ---- simulation check: the credits keep the output FIFO from ever refusing a beat (its own checker
  // watches the out_* stream) --------------------------------------------------------------------------------
`ifndef SYNTHESIS
  always_ff @(posedge clk_i) begin
    if (rst_ni && st_valid_q[NumStages-1] && !fifo_in_ready) $error("%m: output FIFO full (credit count wrong)");
  end
`else
  logic unused_fifo_ready;
  assign unused_fifo_ready = fifo_in_ready;
`endif
endmodule
