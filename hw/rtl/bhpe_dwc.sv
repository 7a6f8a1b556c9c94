`ifndef BHPE_PKG_SV
`include "bhpe_pkg.sv"
`endif

// Lane-count (data width) converter: beats of InLanes elements to beats of OutLanes elements, ElemW
// bits each, lane 0 in the LSBs, element order preserved. One of InLanes, OutLanes divides the other.
// Down-conversion (InLanes > OutLanes) holds one input beat and emits it in InLanes/OutLanes slices;
// up-conversion gathers OutLanes/InLanes input beats into a register; equal lane counts pass through.
// Full rate (one beat a cycle on the wider side's slower stream) without stalls; latency 1 cycle.
module bhpe_dwc #(
  parameter int unsigned ElemW    = 8,
  parameter int unsigned InLanes  = 2,
  parameter int unsigned OutLanes = 1
) (
  input  logic                      clk_i,
  input  logic                      rst_ni,
  input  logic [InLanes*ElemW-1:0]  in_tdata,
  input  logic                      in_tvalid,
  output logic                      in_tready,
  output logic [OutLanes*ElemW-1:0] out_tdata,
  output logic                      out_tvalid,
  input  logic                      out_tready
);
  localparam int unsigned InW  = InLanes * ElemW;
  localparam int unsigned OutW = OutLanes * ElemW;

  if ((InLanes % OutLanes != 0) && (OutLanes % InLanes != 0)) begin : gen_bad_params
    $error("bhpe_dwc: one of InLanes, OutLanes must divide the other");
  end

  if (InLanes == OutLanes) begin : gen_pass
    assign out_tdata  = in_tdata;
    assign out_tvalid = in_tvalid;
    assign in_tready  = out_tready;
    logic unused_clk;
    assign unused_clk = clk_i ^ rst_ni;
  end else if (InLanes > OutLanes) begin : gen_down
    localparam int unsigned Ratio = InLanes / OutLanes;
    localparam int unsigned IdxW  = bhpe_pkg::clog2_min1(Ratio);
    logic [InW-1:0]  buf_q, buf_d;
    logic            valid_q, valid_d;
    logic [IdxW-1:0] idx_q, idx_d;
    logic            last, out_fire, in_fire;

    assign out_tdata  = buf_q[OutW*idx_q +: OutW];
    assign out_tvalid = valid_q;
    assign last       = (idx_q == IdxW'(Ratio - 1));
    assign out_fire   = valid_q & out_tready;
    assign in_tready  = ~valid_q | (out_tready & last);
    assign in_fire    = in_tvalid & in_tready;

    always_comb begin
      buf_d   = buf_q;
      valid_d = valid_q;
      idx_d   = idx_q;
      if (out_fire) begin
        idx_d = last ? '0 : idx_q + IdxW'(1);
        if (last) valid_d = 1'b0;
      end
      if (in_fire) begin
        buf_d   = in_tdata;
        valid_d = 1'b1;
        idx_d   = '0;
      end
    end

    always_ff @(posedge clk_i) begin
      if (!rst_ni) begin
        valid_q <= 1'b0;
        idx_q   <= '0;
      end else begin
        valid_q <= valid_d;
        idx_q   <= idx_d;
      end
    end
    always_ff @(posedge clk_i) begin
      buf_q <= buf_d;
    end
  end else begin : gen_up
    localparam int unsigned Ratio = OutLanes / InLanes;
    localparam int unsigned IdxW  = bhpe_pkg::clog2_min1(Ratio);
    logic [OutW-1:0] buf_q, buf_d;
    logic            valid_q, valid_d;
    logic [IdxW-1:0] idx_q, idx_d;
    logic            last, out_fire, in_fire;

    assign out_tdata  = buf_q;
    assign out_tvalid = valid_q;
    assign last       = (idx_q == IdxW'(Ratio - 1));
    assign out_fire   = valid_q & out_tready;
    // the gathering register is the output register: write only when it is free or leaving now
    assign in_tready  = ~valid_q | out_tready;
    assign in_fire    = in_tvalid & in_tready;

    always_comb begin
      buf_d   = buf_q;
      valid_d = valid_q;
      idx_d   = idx_q;
      if (out_fire) valid_d = 1'b0;
      if (in_fire) begin
        buf_d[InW*idx_q +: InW] = in_tdata;
        idx_d = last ? '0 : idx_q + IdxW'(1);
        if (last) valid_d = 1'b1;
      end
    end

    always_ff @(posedge clk_i) begin
      if (!rst_ni) begin
        valid_q <= 1'b0;
        idx_q   <= '0;
      end else begin
        valid_q <= valid_d;
        idx_q   <= idx_d;
      end
    end
    always_ff @(posedge clk_i) begin
      buf_q <= buf_d;
    end
  end

  // ---- stream protocol check of the stream this module drives (simulation only) ---------------------
  bhpe_stream_assert #(.DataW(OutLanes*ElemW)) u_out_assert (
    .clk_i, .rst_ni, .tdata_i(out_tdata), .tvalid_i(out_tvalid), .tready_i(out_tready)
  );
endmodule
