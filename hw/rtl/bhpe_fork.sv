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
  logic [Width-1:0] data_q;
  logic             full_q, a_taken_q, b_taken_q;

  assign a_tdata   = data_q;
  assign b_tdata   = data_q;
  assign a_tvalid  = full_q & ~a_taken_q;
  assign b_tvalid  = full_q & ~b_taken_q;
  // the held beat is done when each consumer has taken it, before or in this cycle
  assign in_tready = ~full_q | ((a_taken_q | a_tready) & (b_taken_q | b_tready));

  // the next state in one process, its handshake terms local to it (a simulator keeps them in the process)
  always_ff @(posedge clk_i) begin : p_state
    logic in_fire, done;
    in_fire = in_tvalid & in_tready;
    done    = full_q & (a_taken_q | a_tready) & (b_taken_q | b_tready);
    if (!rst_ni) begin
      full_q    <= 1'b0;
      a_taken_q <= 1'b0;
      b_taken_q <= 1'b0;
    end else begin
      full_q    <= in_fire | (full_q & ~done);
      a_taken_q <= ~in_fire & ~done & (a_taken_q | (a_tvalid & a_tready));
      b_taken_q <= ~in_fire & ~done & (b_taken_q | (b_tvalid & b_tready));
    end
    if (in_fire) data_q <= in_tdata;
  end

  bhpe_stream_assert #(.DataW(Width)) u_a_assert (
    .clk_i, .rst_ni, .tdata_i(a_tdata), .tvalid_i(a_tvalid), .tready_i(a_tready)
  );
  bhpe_stream_assert #(.DataW(Width)) u_b_assert (
    .clk_i, .rst_ni, .tdata_i(b_tdata), .tvalid_i(b_tvalid), .tready_i(b_tready)
  );
endmodule
