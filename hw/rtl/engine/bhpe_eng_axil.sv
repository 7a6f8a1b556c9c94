`ifndef BHPE_ENG_AXIL_SV
`define BHPE_ENG_AXIL_SV
// AXI-Lite control slave of the layer-sequential engine: the registers of docs/engine.md, "Control registers".
//
//   0x00 CTRL       bit 0: write 1 to start (ignored while busy)       -> start_o (one-cycle pulse)
//   0x04 STATUS     bit 0 done (sticky until the next start), bit 1 busy, bit 2 error
//   0x08 / 0x0C     DESC_ADDR low / high (read-write, byte strobes honoured)
//   0x10 / 0x14     CYCLES low / high: clock cycles from start to done
//   0x18 LAYER      layer_id of the descriptor being run
//   0x1C ERROR      1 AXI read response not OKAY, 2 AXI write response not OKAY, 3 bad descriptor
// A write is taken when its address and data are both offered (awready = wready = awvalid & wvalid, no write
// response pending); a read when no read data is pending. Responses are always OKAY; other offsets read 0.
module bhpe_eng_axil (
  input  logic        clk_i,
  input  logic        rst_ni,
  input  logic [7:0]  s_axil_awaddr,
  input  logic        s_axil_awvalid,
  output logic        s_axil_awready,
  input  logic [31:0] s_axil_wdata,
  input  logic [3:0]  s_axil_wstrb,
  input  logic        s_axil_wvalid,
  output logic        s_axil_wready,
  output logic [1:0]  s_axil_bresp,
  output logic        s_axil_bvalid,
  input  logic        s_axil_bready,
  input  logic [7:0]  s_axil_araddr,
  input  logic        s_axil_arvalid,
  output logic        s_axil_arready,
  output logic [31:0] s_axil_rdata,
  output logic [1:0]  s_axil_rresp,
  output logic        s_axil_rvalid,
  input  logic        s_axil_rready,
  // to / from the control
  output logic        start_o,
  output logic [63:0] desc_addr_o,
  input  logic        done_i,
  input  logic        busy_i,
  input  logic [31:0] error_i,
  input  logic [63:0] cycles_i,
  input  logic [31:0] layer_i
);
  logic wr;
  assign wr             = s_axil_awvalid & s_axil_wvalid & ~s_axil_bvalid;
  assign s_axil_awready = wr;
  assign s_axil_wready  = wr;
  assign s_axil_bresp   = 2'b00;
  assign s_axil_rresp   = 2'b00;
  assign s_axil_arready = ~s_axil_rvalid;

  function automatic logic [31:0] merge(input logic [31:0] old, input logic [31:0] data, input logic [3:0] strb);
    logic [31:0] r;
    for (int unsigned b = 0; b < 4; b++) r[b*8 +: 8] = strb[b] ? data[b*8 +: 8] : old[b*8 +: 8];
    return r;
  endfunction

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      s_axil_bvalid <= 1'b0;
      start_o       <= 1'b0;
      desc_addr_o   <= '0;
    end else begin
      start_o <= 1'b0;
      if (s_axil_bvalid && s_axil_bready) s_axil_bvalid <= 1'b0;
      if (wr) begin
        s_axil_bvalid <= 1'b1;
        unique case (s_axil_awaddr[7:2])
          6'h00: start_o <= s_axil_wstrb[0] & s_axil_wdata[0] & ~busy_i;
          6'h02: desc_addr_o[31:0]  <= merge(desc_addr_o[31:0], s_axil_wdata, s_axil_wstrb);
          6'h03: desc_addr_o[63:32] <= merge(desc_addr_o[63:32], s_axil_wdata, s_axil_wstrb);
          default: ;
        endcase
      end
    end
  end

  logic [31:0] rdata;
  always_comb begin
    unique case (s_axil_araddr[7:2])
      6'h01:   rdata = {29'd0, error_i != 32'd0, busy_i, done_i};
      6'h02:   rdata = desc_addr_o[31:0];
      6'h03:   rdata = desc_addr_o[63:32];
      6'h04:   rdata = cycles_i[31:0];
      6'h05:   rdata = cycles_i[63:32];
      6'h06:   rdata = layer_i;
      6'h07:   rdata = error_i;
      default: rdata = 32'd0;
    endcase
  end

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      s_axil_rvalid <= 1'b0;
      s_axil_rdata  <= '0;
    end else begin
      if (s_axil_rvalid && s_axil_rready) s_axil_rvalid <= 1'b0;
      if (s_axil_arvalid && s_axil_arready) begin
        s_axil_rvalid <= 1'b1;
        s_axil_rdata  <= rdata;
      end
    end
  end

  logic unused_addr;
  assign unused_addr = ^{s_axil_awaddr[1:0], s_axil_araddr[1:0]};

  // ---- protocol checks of the channels this module drives (simulation only) --------------------------
  bhpe_stream_assert #(.DataW(2)) u_b_assert (
    .clk_i, .rst_ni, .tdata_i(s_axil_bresp), .tvalid_i(s_axil_bvalid), .tready_i(s_axil_bready)
  );
  bhpe_stream_assert #(.DataW(34)) u_r_assert (
    .clk_i, .rst_ni, .tdata_i({s_axil_rresp, s_axil_rdata}), .tvalid_i(s_axil_rvalid), .tready_i(s_axil_rready)
  );
endmodule
`endif  // BHPE_ENG_AXIL_SV
