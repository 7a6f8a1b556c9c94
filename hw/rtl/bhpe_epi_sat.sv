// Saturation of a signed InW-bit integer to the signed OutW-bit range [-2^(OutW-1), 2^(OutW-1)-1]
// (combinational). With OutW >= InW this is a plain sign extension.
module bhpe_epi_sat #(
  parameter int unsigned InW  = 16,
  parameter int unsigned OutW = 8
) (
  input  logic signed [InW-1:0]  in_i,
  output logic signed [OutW-1:0] out_o
);
  if (OutW >= InW) begin : gen_extend
    assign out_o = OutW'(in_i);
  end else begin : gen_clip
    // the value fits when the bits above the OutW-1 sign bit all equal the sign bit
    logic [InW-OutW:0] top;
    logic              fits;
    assign top  = in_i[InW-1:OutW-1];
    assign fits = (top == '0) | (top == '1);
    always_comb begin
      out_o = in_i[OutW-1:0];
      if (!fits) begin
        out_o = in_i[InW-1] ? {1'b1, {(OutW-1){1'b0}}} : {1'b0, {(OutW-1){1'b1}}};
      end
    end
  end
endmodule
