// Broadcast: one input stream to two output streams (a, b) carrying the same beats.
// The beat is held in an output register; each output has a "taken" flag so that a and b may stall
// independently. The input beat is released (and the next one accepted) once both outputs took it.
// Latency 1 cycle, one beat a cycle when neither output stalls.
module bhpe_fork #(
  parameter int unsigned Width = 8
) (
  input  logic             clk_i,
  input  logic             rst_ni,
  input  logic [Width-1:0] in_tdata,
  input  logic             in_tvalid,
  output logic             in_tready,
  output logic [Width-1:0] a_tdata,
  output logic             a_tvalid,
  input  logic             a_tready,
  output logic [Width-1:0] b_tdata,
  output logic             b_tvalid,
  input  logic             b_tready
);
  logic [Width-1:0] data_q, data_d;
  logic             full_q, full_d;
  logic             a_taken_q, a_taken_d, b_taken_q, b_taken_d;
  logic             a_fire, b_fire, done, in_fire;

  assign a_tdata  = data_q;
  assign b_tdata  = data_q;
  assign a_tvalid = full_q & ~a_taken_q;
  assign b_tvalid = full_q & ~b_taken_q;
  assign a_fire   = a_tvalid & a_tready;
  assign b_fire   = b_tvalid & b_tready;
  // the held beat has now reached both outputs
  assign done      = full_q & (a_taken_q | a_fire) & (b_taken_q | b_fire);
  assign in_tready = ~full_q | done;
  assign in_fire   = in_tvalid & in_tready;

  always_comb begin
    data_d    = data_q;
    full_d    = full_q;
    a_taken_d = a_taken_q | a_fire;
    b_taken_d = b_taken_q | b_fire;
    if (done) begin
      full_d    = 1'b0;
      a_taken_d = 1'b0;
      b_taken_d = 1'b0;
    end
    if (in_fire) begin
      data_d    = in_tdata;
      full_d    = 1'b1;
      a_taken_d = 1'b0;
      b_taken_d = 1'b0;
    end
  end

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      full_q    <= 1'b0;
      a_taken_q <= 1'b0;
      b_taken_q <= 1'b0;
    end else begin
      full_q    <= full_d;
      a_taken_q <= a_taken_d;
      b_taken_q <= b_taken_d;
    end
  end

  always_ff @(posedge clk_i) begin
    data_q <= data_d;
  end

  // ---- stream protocol check of the streams this module drives (simulation only) --------------------
  bhpe_stream_assert #(.DataW(Width)) u_a_assert (
    .clk_i, .rst_ni, .tdata_i(a_tdata), .tvalid_i(a_tvalid), .tready_i(a_tready)
  );
  bhpe_stream_assert #(.DataW(Width)) u_b_assert (
    .clk_i, .rst_ni, .tdata_i(b_tdata), .tvalid_i(b_tvalid), .tready_i(b_tready)
  );
endmodule
