// Shared helpers of the binaryhpe RTL library: the width formulas every module needs, written once.
//
// Every module that uses it starts with `ifndef BHPE_PKG_SV `include "bhpe_pkg.sv" `endif, so that each file
// compiles on its own (verilator --lint-only -Wall -Ihw/rtl hw/rtl/bhpe_fifo.sv); where the package was
// compiled first (every build lists it first: sim/toolchain.py rtl_library()) the include is skipped, and the
// guard below makes any repeated include a no-op. Tools that read several files must share macros between
// them (one compilation unit: Verilator does; Yosys's read_slang gets --single-unit in compile/synth.py).
// Modules call the functions with the package prefix (bhpe_pkg::clog2_min1(Depth)), never import *.
`ifndef BHPE_PKG_SV
`define BHPE_PKG_SV
package bhpe_pkg;

  // Bits of an index (counter, address, pointer) into Count items: clog2(Count), but at least one bit,
  // so that a count of 1 still gets a (constant 0) register of width 1.
  function automatic int unsigned clog2_min1(input int unsigned count);
    return (count > 1) ? $clog2(count) : 1;
  endfunction

  // Bits of an unsigned count 0..MaxCount inclusive (a popcount of MaxCount bits, a FIFO fill level).
  function automatic int unsigned count_width(input int unsigned max_count);
    return $clog2(max_count + 1);
  endfunction

  // Accumulator width of the matrix-vector units for a dot product of N elements:
  //   binary (XNOR-popcount): the sum 2 * popcount - popcount(mask) lies in -N..N: clog2(N + 1) + 1 bits;
  //   fixed point: N signed InW x WW products, each in InW + WW bits, summed: WW + InW + clog2(N) bits.
  // Both are exact (no wrap-around of the final sum); bhpe_mvu_core computes in this width.
  function automatic int unsigned mvu_acc_width(input bit binary, input int unsigned n,
                                                input int unsigned in_w, input int unsigned w_w);
    return binary ? ($clog2(n + 1) + 1) : (w_w + in_w + $clog2(n));
  endfunction

  // Registers on every leaf-to-root path of bhpe_pipe_adder_tree (Count terms, a register every
  // LevelsPerStage adder levels, none at the root): floor((D - 1) / LevelsPerStage), D = clog2(Count) levels;
  // 0 with LevelsPerStage = 0 or Count <= 2.
  function automatic int unsigned tree_stages(input int unsigned count, input int unsigned levels_per_stage);
    int unsigned d;
    d = clog2_min1(count);
    return (levels_per_stage == 0 || count < 2) ? 0 : (d - 1) / levels_per_stage;
  endfunction

  // Registers bhpe_mvu_core adds between the operand fetch and the dot-product register (each one cycle of
  // latency): the multipliers' input and output registers (fixed point, MulReg of them) and the adder or
  // popcount tree's.
  function automatic int unsigned mvu_extra_stages(input bit binary, input int unsigned simd,
                                                   input int unsigned mul_reg, input int unsigned tree_levels);
    return (binary ? 0 : mul_reg) + tree_stages(simd, tree_levels);
  endfunction

endpackage

`endif  // BHPE_PKG_SV
