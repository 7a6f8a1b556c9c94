`ifndef BHPE_PKG_SV
`include "bhpe_pkg.sv"
`endif

// Sliding-window generator for a KxK window, stride S, zero padding Pad, over H x W x C frames.
//
// Input: Lanes elements (ElemW bits) a beat, raster order, channel fastest (C/Lanes beats a pixel).
// Output: for every output pixel (oy, ox) in raster order, the window elements in (ky, kx, c) order,
// Lanes a beat, with out_tmask (one bit a lane): 1 = a real input element, 0 = a padding position,
// whose data is 0. OH = floor((H + 2*Pad - K)/S) + 1 and OW likewise (PyTorch's floor mode: input rows
// and columns after the last window are consumed and ignored).
//
// Line buffer: a ring of Rows = K + S input rows in one plain memory (write port for the input, one
// registered read port for the windows: a simple dual-port block RAM). The writer fills rows in order
// and stalls (in_tready = 0) only when all Rows slots hold complete rows still needed. The reader emits
// output row oy once every input row it needs (up to S*oy - Pad + K - 1) is complete; rows before
// S*oy - Pad are released when row oy starts, all rows of a frame after its last window was issued
// and its last row arrived (with floor division, rows after the last window are consumed unused: the
// reader then "drains", waiting for them, before it starts the next frame).
// Rows = K + S lets the writer bring in the S rows of the next output row while the current one is
// emitted, so the generator runs at max(input beats, output beats) a frame; it cannot deadlock
// because an output row never needs more than K + S held rows.
// A read is issued, its address registered (the address arithmetic and the block RAM's address setup are
// separate clock cycles), the memory read, and the data goes through a 4-entry output FIFO (bhpe_fifo) with
// credit counting (a read is issued while issued + in flight + held < 4), so out_tready reaches no logic
// but the FIFO's (not the read issue, not the counters) and one beat a cycle is sustained: a window element
// leaves 3 cycles after its issue.
// For the clock, the row accounting keeps two sums in registers of their own: avail_q = base_row + full_rows
// (the rows of the reader's frame that are complete) and last_row_q (the last row the current output row
// needs). A frame's rows are released the cycle after its last read is issued at the earliest (the drain
// step), so the registered read of a row never meets the write of the next frame's row into its slot.
module bhpe_swg #(
  parameter int unsigned ElemW = 8,
  parameter int unsigned Lanes = 1,
  parameter int unsigned H     = 4,
  parameter int unsigned W     = 4,
  parameter int unsigned C     = 1,
  parameter int unsigned K     = 3,
  parameter int unsigned S     = 1,
  parameter int unsigned Pad   = 1
) (
  input  logic                   clk_i,
  input  logic                   rst_ni,
  input  logic [Lanes*ElemW-1:0] in_tdata,
  input  logic                   in_tvalid,
  output logic                   in_tready,
  output logic [Lanes*ElemW-1:0] out_tdata,
  output logic [Lanes-1:0]       out_tmask,
  output logic                   out_tvalid,
  input  logic                   out_tready
);
  localparam int unsigned BeatW    = Lanes * ElemW;
  localparam int unsigned CB       = C / Lanes;
  localparam int unsigned OH       = (H + 2 * Pad - K) / S + 1;
  localparam int unsigned OW       = (W + 2 * Pad - K) / S + 1;
  localparam int unsigned Rows     = K + S;
  localparam int unsigned RowWords = W * CB;
  localparam int unsigned Depth    = Rows * RowWords;
  localparam int unsigned AddrW    = bhpe_pkg::clog2_min1(Depth);
  localparam int unsigned ColW     = bhpe_pkg::clog2_min1(RowWords);
  localparam int unsigned SlotW    = $clog2(Rows);  // Rows >= 2
  localparam int unsigned FullW    = bhpe_pkg::count_width(Rows);
  localparam int unsigned CbW      = bhpe_pkg::clog2_min1(CB);
  localparam int unsigned KW       = bhpe_pkg::clog2_min1(K);
  localparam int unsigned OxW      = bhpe_pkg::clog2_min1(OW);
  localparam int unsigned OyW      = bhpe_pkg::clog2_min1(OH);
  localparam int unsigned MaxHW    = (H > W) ? H : W;
  // signed coordinates span [-Pad, S*(max(OH,OW)-1) - Pad + K - 1 + S] and must hold H + Rows
  localparam int unsigned CoordW   = $clog2(MaxHW + 2 * Pad + K + 2 * S + 1) + 2;
  typedef logic signed [CoordW-1:0] coord_t;
  // the last input row output row 0 needs, min(K - 1 - Pad, H - 1)
  localparam coord_t LastRow0 = (K - 1 - Pad > H - 1) ? coord_t'(H - 1) : coord_t'(K - 1 - Pad);

  if (C % Lanes != 0) begin : gen_bad_lanes
    $error("bhpe_swg: Lanes must divide C");
  end
  if (H + 2 * Pad < K || W + 2 * Pad < K) begin : gen_bad_shape
    $error("bhpe_swg: the window is larger than the padded frame");
  end
  if (Pad >= K) begin : gen_bad_pad
    $error("bhpe_swg: Pad must be smaller than K");
  end

  function automatic logic [SlotW-1:0] slot_add(input logic [SlotW-1:0] a, input logic [FullW-1:0] d);
    logic [FullW:0] s;
    s = (FullW + 1)'(a) + (FullW + 1)'(d);
    if (s >= (FullW + 1)'(Rows)) s = s - (FullW + 1)'(Rows);
    return SlotW'(s);
  endfunction

  // ---------------------------------------------------------------- line buffer memory
  logic [BeatW-1:0] mem [Depth];
  logic [BeatW-1:0] rdata_q;
  logic             in_fire;  // a beat taken from the input, written into the ring
  logic [AddrW-1:0] waddr, raddr_q;  // raddr_q: the issued read's address, registered

  always_ff @(posedge clk_i) begin
    if (in_fire) mem[waddr] <= in_tdata;
  end

  // ---------------------------------------------------------------- shared row accounting
  logic [FullW-1:0] full_rows_q;  // complete rows held in the ring
  logic [SlotW-1:0] base_slot_q;  // slot of the oldest held row
  coord_t           base_row_q;   // frame row held in base_slot (reader's frame)

  // ---------------------------------------------------------------- writer
  logic [ColW-1:0]  wcol_q;
  logic [SlotW-1:0] wslot_q;

  assign in_tready = (full_rows_q < FullW'(Rows));
  assign in_fire   = in_tvalid & in_tready;
  assign waddr     = AddrW'(AddrW'(wslot_q) * AddrW'(RowWords) + AddrW'(wcol_q));

  // ---------------------------------------------------------------- reader
  logic [OyW-1:0] oy_q;
  logic [OxW-1:0] ox_q;
  logic [KW-1:0]  ky_q, kx_q;
  logic [CbW-1:0] cb_q;
  coord_t         ry0_q, rx0_q;  // S*oy - Pad, S*ox - Pad
  logic           active_q;      // current output row has its rows
  logic           drain_q;       // frame issued, waiting for its unused last rows
  coord_t         last_row_q;    // min(ry0 + K - 1, H - 1)
  coord_t         avail_q;       // base_row + full_rows

  // output stage: read address register -> read data register -> 4-entry FIFO, credit counted
  logic             iss_q, iss_pad_q, rd_q;  // the issued read, address registered (raddr_q)
  logic             infl_q, infl_pad_q;      // its data, in rdata_q
  logic [2:0]       ob_cnt_q;
  logic [BeatW:0]   ob_in, ob_out;
  logic             ob_in_ready;

  always_ff @(posedge clk_i) begin
    if (rd_q) rdata_q <= mem[raddr_q];
  end

  // The writer's and the reader's next state, in one process whose intermediate terms are local to it (a
  // simulator keeps them in the process instead of module signals written and read back every cycle).
  always_ff @(posedge clk_i) begin : p_state
    logic             row_done;
    logic [ColW-1:0]  wcol_d;
    logic [SlotW-1:0] wslot_d;
    logic [FullW-1:0] full_rows_d;
    logic [SlotW-1:0] base_slot_d;
    coord_t           base_row_d;
    logic [OyW-1:0]   oy_d;
    logic [OxW-1:0]   ox_d;
    logic [KW-1:0]    ky_d, kx_d;
    logic [CbW-1:0]   cb_d;
    coord_t           ry0_d, rx0_d, last_row_d, avail_d;
    logic             active_d, drain_d;
    coord_t           ry, rx;
    coord_t           last_row_nx;  // the next output row's, min(ry0 + S + K - 1, H - 1)
    logic             frame_in;     // every row of the reader's frame is complete
    logic             frame_rel;    // this cycle releases the reader's frame (avail drops by H)
    logic [FullW-1:0] rel;          // ry - base_row, in [0, Rows) for a non-padding tap
    logic             ready_cond, row_ok, pad, issue, pop;
    logic             last_cb, last_kx, last_ky, last_ox, last_oy;

    // writer
    row_done = in_fire & (wcol_q == ColW'(RowWords - 1));
    wcol_d   = wcol_q;
    wslot_d  = wslot_q;
    if (in_fire) begin
      wcol_d = row_done ? '0 : wcol_q + ColW'(1);
      if (row_done) wslot_d = slot_add(wslot_q, FullW'(1));
    end

    // reader
    ry          = ry0_q + coord_t'(ky_q);
    rx          = rx0_q + coord_t'(kx_q);
    last_row_nx = (ry0_q + coord_t'(S + K - 1) > coord_t'(H - 1)) ? coord_t'(H - 1)
                                                                  : ry0_q + coord_t'(S + K - 1);
    // frame end: rows no window uses must arrive too
    frame_in   = avail_q >= coord_t'(H);
    ready_cond = avail_q > last_row_q;
    row_ok     = active_q | (ready_cond & ~drain_q);
    pad        = (ry < 0) || (ry >= coord_t'(H)) || (rx < 0) || (rx >= coord_t'(W));
    pop        = out_tvalid & out_tready;
    // issue a read when the FIFO will have room for it when its data arrives, whatever the consumer does
    issue      = row_ok & ((ob_cnt_q + 3'(iss_q) + 3'(infl_q)) < 3'd4);
    rel        = FullW'(ry - base_row_q);
    last_cb    = (cb_q == CbW'(CB - 1));
    last_kx    = (kx_q == KW'(K - 1));
    last_ky    = (ky_q == KW'(K - 1));
    last_ox    = (ox_q == OxW'(OW - 1));
    last_oy    = (oy_q == OyW'(OH - 1));

    oy_d        = oy_q;
    ox_d        = ox_q;
    ky_d        = ky_q;
    kx_d        = kx_q;
    cb_d        = cb_q;
    ry0_d       = ry0_q;
    last_row_d  = last_row_q;
    rx0_d       = rx0_q;
    active_d    = active_q;
    drain_d     = drain_q;
    base_row_d  = base_row_q;
    base_slot_d = base_slot_q;
    frame_rel   = 1'b0;
    full_rows_d = full_rows_q + FullW'(row_done);
    // start of an output row: release the rows it no longer needs
    // end of a frame whose last rows arrived after its last window: release it now
    if (drain_q && frame_in) begin
      drain_d     = 1'b0;
      frame_rel   = 1'b1;
      base_slot_d = slot_add(base_slot_q, FullW'(coord_t'(H) - base_row_q));
      full_rows_d = full_rows_d - FullW'(coord_t'(H) - base_row_q);
      base_row_d  = '0;
    end
    if (!active_q && !drain_q && ready_cond) begin
      active_d = 1'b1;
      if (ry0_q > base_row_q) begin
        base_row_d  = ry0_q;
        base_slot_d = slot_add(base_slot_q, FullW'(ry0_q - base_row_q));
        full_rows_d = full_rows_d - FullW'(ry0_q - base_row_q);
      end
    end
    if (issue) begin
      cb_d = last_cb ? '0 : cb_q + CbW'(1);
      if (last_cb) begin
        kx_d = last_kx ? '0 : kx_q + KW'(1);
        if (last_kx) begin
          ky_d = last_ky ? '0 : ky_q + KW'(1);
          if (last_ky) begin
            ox_d  = last_ox ? '0 : ox_q + OxW'(1);
            rx0_d = last_ox ? -coord_t'(Pad) : rx0_q + coord_t'(S);
            if (last_ox) begin
              // end of an output row
              active_d = 1'b0;
              oy_d     = last_oy ? '0 : oy_q + OyW'(1);
              ry0_d    = last_oy ? -coord_t'(Pad) : ry0_q + coord_t'(S);
              last_row_d = last_oy ? LastRow0 : last_row_nx;
              // end of the frame: release all its rows once they all arrived and its last read is done
              // (the drain step, the next cycle at the earliest)
              if (last_oy) drain_d = 1'b1;
            end
          end
        end
      end
    end
    avail_d = avail_q + coord_t'(row_done) - (frame_rel ? coord_t'(H) : '0);

    raddr_q <= AddrW'(AddrW'(slot_add(base_slot_q, rel)) * AddrW'(RowWords) + AddrW'(rx) * AddrW'(CB)
                      + AddrW'(cb_q));
    if (!rst_ni) begin
      full_rows_q <= '0;
      base_slot_q <= '0;
      base_row_q  <= '0;
      wcol_q      <= '0;
      wslot_q     <= '0;
      oy_q        <= '0;
      ox_q        <= '0;
      ky_q        <= '0;
      kx_q        <= '0;
      cb_q        <= '0;
      ry0_q       <= -coord_t'(Pad);
      rx0_q       <= -coord_t'(Pad);
      last_row_q  <= LastRow0;
      avail_q     <= '0;
      iss_q       <= 1'b0;
      iss_pad_q   <= 1'b0;
      rd_q        <= 1'b0;
      active_q    <= 1'b0;
      drain_q     <= 1'b0;
      infl_q      <= 1'b0;
      infl_pad_q  <= 1'b0;
      ob_cnt_q    <= '0;
    end else begin
      full_rows_q <= full_rows_d;
      base_slot_q <= base_slot_d;
      base_row_q  <= base_row_d;
      wcol_q      <= wcol_d;
      wslot_q     <= wslot_d;
      oy_q        <= oy_d;
      ox_q        <= ox_d;
      ky_q        <= ky_d;
      kx_q        <= kx_d;
      cb_q        <= cb_d;
      ry0_q       <= ry0_d;
      rx0_q       <= rx0_d;
      last_row_q  <= last_row_d;
      avail_q     <= avail_d;
      iss_q       <= issue;
      iss_pad_q   <= pad;
      rd_q        <= issue & ~pad;
      active_q    <= active_d;
      drain_q     <= drain_d;
      infl_q      <= iss_q;
      infl_pad_q  <= iss_pad_q;
      ob_cnt_q    <= ob_cnt_q + 3'(infl_q) - 3'(pop);
    end
  end

  assign ob_in = {infl_pad_q, infl_pad_q ? '0 : rdata_q};

  bhpe_fifo #(
    .Width(BeatW + 1),
    .Depth(4)
  ) u_out_fifo (
    .clk_i,
    .rst_ni,
    .in_tdata  (ob_in),
    .in_tvalid (infl_q),
    .in_tready (ob_in_ready),
    .out_tdata (ob_out),
    .out_tvalid(out_tvalid),
    .out_tready(out_tready)
  );
  assign out_tdata = ob_out[BeatW-1:0];
  assign out_tmask = {Lanes{~ob_out[BeatW]}};

  logic unused_ready;
  assign unused_ready = ob_in_ready;  // always 1 by the credit count

  bhpe_stream_assert #(.DataW(Lanes*(ElemW+1))) u_out_assert (
    .clk_i, .rst_ni, .tdata_i({out_tmask, out_tdata}), .tvalid_i(out_tvalid), .tready_i(out_tready)
  );
endmodule
