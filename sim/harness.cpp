// Whole-network Verilator harness for a binaryhpe top level (bhpe_top): streams frames in, collects
// frames out, with optional random stalls on both streams, and reports cycle counts. No Python in the
// loop, so whole networks simulate at Verilator speed.
//
// usage: Vsim IN OUT FRAMES IN_BEATS OUT_BEATS STALL_IN_PERMILLE STALL_OUT_PERMILLE SEED TIMEOUT DRAIN
//             [WAVES.fst] [+verilator+... plusargs, e.g. +verilator+rand+reset+2 +verilator+seed+7]
// IN: one hex word a line (FRAMES * IN_BEATS lines), of any width up to the input port's. OUT: "cycle hexword" a
// line; "# frame_in C" where a frame's first beat went in, "# done C" after the last expected output beat, "# cycles C" all cycles simulated after reset
// (the drain included).
//
// The harness trusts nothing the design says about itself:
// - the sources obey AXI-Stream (a beat once offered stays valid and unchanged until it is taken; a stall
//   only delays the next beat), so the modules' stream checkers (bhpe_stream_assert, built with --assert)
//   judge the design, not the harness;
// - after the last expected output beat it runs DRAIN more cycles (a negative DRAIN: as many cycles as the
//   run took per frame, at least 1000), still offering any input beats left and
//   keeping out_tready high: an output beat there is an extra output (exit 5), and an input beat still
//   unconsumed at the end is an input the design never took (exit 4);
// - initial state and reset values come from Verilator's +verilator+rand+reset plusarg (the build uses
//   --x-initial unique): with 2, every register starts random, so a register that needs a reset and lacks
//   one shows as a wrong, missing or extra beat.
// Exit 0 when every output beat arrived, every input beat was taken and nothing more came out; 3 when no
// beat moved for TIMEOUT cycles (deadlock); 4 input beats left over; 5 extra output beats; 6 the design
// called $finish; 2 bad usage. A failed assertion ends the process with Verilator's "%Error" (exit 1).
//
// Weight streams (MVUs whose weights come from DRAM): built with -DBHPE_WPORTS, the generated wports.inc
// (sim/netsim.py) names each top-level w_<layer> port. The harness plays the DMA: it replays each port's
// matrix image (wstream/<layer>.bin, rtlgen) word after word, endlessly, with the input's stall probability.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <type_traits>
#include <vector>

#include "Vbhpe_top.h"
#include "verilated.h"
#ifdef BHPE_WPORTS
#include "wports.inc"  // BHPE_NUM_WPORTS, bhpe_wport_{image,bits,drive,ready}
#else
#define BHPE_NUM_WPORTS 0
static const char* bhpe_wport_image[1] = {nullptr};
static const int bhpe_wport_bits[1] = {0};
static void bhpe_wport_drive(Vbhpe_top&, int, bool, const uint32_t*) {}
static bool bhpe_wport_ready(Vbhpe_top&, int) { return false; }
#endif
#if VM_TRACE
#include "verilated_fst_c.h"
#endif

static uint64_t rng_state = 1;
static uint32_t rnd() {  // xorshift64*
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32);
}

// Stream data of any width: Verilator holds a port of up to 64 bits in an integer (CData .. QData) and a wider
// one in 32-bit words (VlWide<N>, least significant first). A beat is kept as 32-bit words, least significant
// first, as many as the widest line of the input file needs (at least two).
template <typename T>
static void set_data(T& port, const uint32_t* w) {
  port = (T)((uint64_t)w[0] | ((uint64_t)w[1] << 32));
}
template <std::size_t N>
static void set_data(VlWide<N>& port, const uint32_t* w) {
  for (std::size_t i = 0; i < N; i++) port[i] = w[i];
}
template <typename T>
static void print_data(std::FILE* f, const T& port) {
  std::fprintf(f, "%llx", (unsigned long long)port);
}
template <std::size_t N>
static void print_data(std::FILE* f, const VlWide<N>& port) {
  std::size_t i = N - 1;
  while (i > 0 && port[i] == 0) i--;  // no leading zero words
  std::fprintf(f, "%x", port[i]);
  while (i-- > 0) std::fprintf(f, "%08x", port[i]);
}
// words a beat of a port type is kept in (VlWide<N>: N)
template <typename T>
struct DataWords { static constexpr std::size_t n = 2; };
template <std::size_t N>
struct DataWords<VlWide<N>> { static constexpr std::size_t n = N; };
// one hex number (no prefix) into ``chunks`` 32-bit words, least significant first
static bool parse_hex(const std::string& line, std::size_t chunks, uint32_t* w) {
  std::size_t end = line.find_last_not_of(" \t\r");
  if (end == std::string::npos) return false;
  std::size_t digits = end + 1;
  if ((digits + 7) / 8 > chunks) return false;
  for (std::size_t k = 0; k < chunks; k++) {
    if (digits == 0) { w[k] = 0; continue; }
    std::size_t n = std::min<std::size_t>(8, digits);
    w[k] = (uint32_t)std::strtoul(line.substr(digits - n, n).c_str(), nullptr, 16);
    digits -= n;
  }
  return true;
}

// Vsim --pgo-train CYCLES: the training run of a profile-guided build (sim/netsim.py, pgo=True): after reset,
// CYCLES cycles of input beats (offered 9 cycles in 10, each held until taken; random lowest bit) and a random
// output ready (9 in 10); weight-stream ports stay idle; no files. Exit 0, or Verilator's error on a failed
// assertion.
static int pgo_train(int argc, char** argv, long cycles) {
  VerilatedContext ctx;
  ctx.commandArgs(argc, argv);
  Vbhpe_top top(&ctx);
  const std::size_t ichunks = DataWords<std::remove_reference_t<decltype(Vbhpe_top::in_tdata)>>::n;
  std::vector<uint32_t> word(ichunks, 0);
  std::vector<uint32_t> none(ichunks + 2, 0);
  top.clk_i = 0;
  top.rst_ni = 0;
  top.in_tvalid = 0;
  top.out_tready = 0;
  for (int i = 0; i < BHPE_NUM_WPORTS; i++) bhpe_wport_drive(top, i, false, none.data());
  bool offered = false;
  for (long c = 0; c < cycles + 5; c++) {
    if (c == 4) top.rst_ni = 1;
    if (c > 4 && !offered && rnd() % 10) {
      word[0] = rnd() & 1;  // the port's width is not known here: only its lowest bit varies
      offered = true;
    }
    top.in_tvalid = offered ? 1 : 0;
    set_data(top.in_tdata, word.data());
    top.out_tready = (c > 4 && rnd() % 10) ? 1 : 0;
    top.eval();
    const bool fire = offered && top.in_tready;
    top.clk_i = 1;
    top.eval();
    top.clk_i = 0;
    if (fire) offered = false;
    if (ctx.gotFinish()) break;
  }
  top.final();
  return 0;
}

int main(int argc, char** argv) {
  // positional arguments; "+..." ones are Verilator's plusargs (ctx.commandArgs reads them)
  std::vector<const char*> pos;
  for (int i = 0; i < argc; i++)
    if (argv[i][0] != '+') pos.push_back(argv[i]);
  if (pos.size() == 3 && std::string(pos[1]) == "--pgo-train") return pgo_train(argc, argv, std::atol(pos[2]));
  if (pos.size() < 11) {
    std::fprintf(stderr, "usage: %s IN OUT FRAMES IN_BEATS OUT_BEATS STALL_IN STALL_OUT SEED TIMEOUT DRAIN [WAVES] "
                 "[+plusargs]\n", argv[0]);
    return 2;
  }
  const long frames = std::atol(pos[3]), in_beats = std::atol(pos[4]), out_beats = std::atol(pos[5]);
  const uint32_t stall_in = std::atoi(pos[6]), stall_out = std::atoi(pos[7]);
  rng_state = std::strtoull(pos[8], nullptr, 10) * 0x9E3779B97F4A7C15ULL + 1;
  const long timeout = std::atol(pos[9]);
  long drain = std::atol(pos[10]);
  // the input beats, ``ichunks`` 32-bit words each (the port's words; a line wider than the port is an error)
  const std::size_t ichunks = DataWords<std::remove_reference_t<decltype(Vbhpe_top::in_tdata)>>::n;
  std::vector<uint32_t> in;
  std::size_t n_in = 0;
  {
    std::ifstream f(pos[1]);
    std::string line;
    while (std::getline(f, line)) {
      if (line.empty()) continue;
      in.resize((n_in + 1) * ichunks);
      if (!parse_hex(line, ichunks, &in[n_in * ichunks])) {
        std::fprintf(stderr, "input line %zu is not a hex word of at most %zu bits\n", n_in + 1, 32 * ichunks);
        return 2;
      }
      n_in++;
    }
  }
  if ((long)n_in != frames * in_beats) {
    std::fprintf(stderr, "input has %zu beats, expected %ld\n", n_in, frames * in_beats);
    return 2;
  }
  const std::vector<uint32_t> no_data(ichunks, 0);
  // weight images: port i's words, each (bits + 31) / 32 little-endian 32-bit chunks
  std::vector<std::vector<uint32_t>> wimg(BHPE_NUM_WPORTS);
  std::vector<size_t> wchunks(BHPE_NUM_WPORTS), wpos(BHPE_NUM_WPORTS, 0), wwords(BHPE_NUM_WPORTS);
  for (int i = 0; i < BHPE_NUM_WPORTS; i++) {
    const size_t nbytes = bhpe_wport_bits[i] / 8;
    wchunks[i] = (bhpe_wport_bits[i] + 31) / 32;
    std::ifstream f(bhpe_wport_image[i], std::ios::binary);
    if (!f) { std::fprintf(stderr, "cannot read %s\n", bhpe_wport_image[i]); return 2; }
    std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (bytes.empty() || bytes.size() % nbytes) {
      std::fprintf(stderr, "%s: %zu bytes is not a whole number of %zu-byte words\n", bhpe_wport_image[i],
                   bytes.size(), nbytes);
      return 2;
    }
    wwords[i] = bytes.size() / nbytes;
    wimg[i].assign(wwords[i] * wchunks[i], 0);
    for (size_t w = 0; w < wwords[i]; w++)
      for (size_t b = 0; b < nbytes; b++) wimg[i][w * wchunks[i] + b / 4] |= (uint32_t)bytes[w * nbytes + b] << (8 * (b % 4));
  }
  VerilatedContext ctx;
  ctx.commandArgs(argc, argv);
  Vbhpe_top top(&ctx);
#if VM_TRACE
  VerilatedFstC* tfp = nullptr;
  if (pos.size() > 11) {
    ctx.traceEverOn(true);
    tfp = new VerilatedFstC;
    top.trace(tfp, 99);
    tfp->open(pos[11]);
  }
#endif
  // two evaluations a cycle: settle() applies the harness's new inputs together with the falling clock edge
  // (the library has no negedge logic: its resets are synchronous), rise() is the
  // rising edge; both are dumped when tracing (settle at t*10, the edge at t*10+5)
  uint64_t t = 0;
  auto settle = [&]() {
    top.eval();
#if VM_TRACE
    if (tfp) tfp->dump(t * 10);
#endif
  };
  auto rise = [&]() {
    top.clk_i = 1;
    top.eval();
#if VM_TRACE
    if (tfp) tfp->dump(t * 10 + 5);
#endif
    top.clk_i = 0;
    t++;
  };
  top.clk_i = 0;
  top.rst_ni = 0;
  top.in_tvalid = 0;
  top.out_tready = 0;
  for (int i = 0; i < BHPE_NUM_WPORTS; i++) bhpe_wport_drive(top, i, false, wimg[i].data());
  settle();
  for (int i = 0; i < 4; i++) {
    rise();
    if (i == 3) top.rst_ni = 1;
    settle();
  }
  rise();
  const uint64_t t0 = t;
  std::FILE* out = std::fopen(pos[2], "w");
  size_t ip = 0;
  long got = 0, idle = 0, extra = 0, drained = 0;
  const long want = frames * out_beats;
  bool in_offered = false;  // AXI-Stream: an offered beat stays valid until it is taken
  std::vector<bool> wvalid(BHPE_NUM_WPORTS, false);
  // the expected beats, then DRAIN cycles in which nothing may come out
  while (got < want || drained < drain) {
    const bool draining = got >= want;
    const bool in_idle = stall_in && (rnd() % 1000) < stall_in;
    const bool out_stall = !draining && stall_out && (rnd() % 1000) < stall_out;
    in_offered = ip < n_in && (in_offered || !in_idle);
    top.in_tvalid = in_offered ? 1 : 0;
    set_data(top.in_tdata, ip < n_in ? &in[ip * ichunks] : no_data.data());
    top.out_tready = out_stall ? 0 : 1;
    for (int i = 0; i < BHPE_NUM_WPORTS; i++) {
      wvalid[i] = wvalid[i] || !(stall_in && (rnd() % 1000) < stall_in);
      bhpe_wport_drive(top, i, wvalid[i], &wimg[i][(wpos[i] % wwords[i]) * wchunks[i]]);
    }
    settle();
    const bool in_fire = top.in_tvalid && top.in_tready;
    const bool out_fire = top.out_tvalid && top.out_tready;
    bool w_fire = false;
    for (int i = 0; i < BHPE_NUM_WPORTS; i++)
      if (wvalid[i] && bhpe_wport_ready(top, i)) { wpos[i]++; wvalid[i] = false; w_fire = true; }
    if (out_fire && draining) {
      std::fprintf(out, "# extra %llu ", (unsigned long long)(t - t0));
      print_data(out, top.out_tdata);
      std::fputc('\n', out);
      extra++;
    } else if (out_fire) {
      std::fprintf(out, "%llu ", (unsigned long long)(t - t0));
      print_data(out, top.out_tdata);
      std::fputc('\n', out);
      got++;
      if (got == want) {
        std::fprintf(out, "# done %llu\n", (unsigned long long)(t - t0 + 1));
        if (drain < 0) drain = std::max(1000L, (long)((t - t0 + 1) / frames));
      }
    }
    if (in_fire) {
      if (ip % in_beats == 0) std::fprintf(out, "# frame_in %llu\n", (unsigned long long)(t - t0));
      ip++;
      in_offered = false;
    }
    idle = (in_fire || out_fire || w_fire) ? 0 : idle + 1;
    if (draining) drained++;
    rise();
    if (ctx.gotFinish()) {
      std::fclose(out);
      std::fprintf(stderr, "the design ended the simulation ($finish or $stop) at cycle %llu\n",
                   (unsigned long long)(t - t0));
      return 6;
    }
    if (!draining && idle > timeout) {
      std::fprintf(out, "# deadlock %llu\n", (unsigned long long)(t - t0));
      std::fclose(out);
      std::fprintf(stderr, "DEADLOCK: no beat moved for %ld cycles (%ld of %ld output beats, %zu of %zu input)\n",
                   timeout, got, want, ip, n_in);
#if VM_TRACE
      if (tfp) tfp->close();
#endif
      return 3;
    }
  }
  for (int i = 0; i < BHPE_NUM_WPORTS; i++)
    std::fprintf(out, "# wport %d %llu\n", i, (unsigned long long)wpos[i]);
  std::fprintf(out, "# cycles %llu\n", (unsigned long long)(t - t0));  // every cycle simulated, the drain included
  std::fclose(out);
#if VM_TRACE
  if (tfp) tfp->close();
#endif
  top.final();
  if (extra) {
    std::fprintf(stderr, "EXTRA OUTPUT: %ld output beats after the %ld expected ones (within %ld further cycles)\n",
                 extra, want, drain);
    return 5;
  }
  if (ip < n_in) {
    std::fprintf(stderr, "INPUT LEFT: the design took %zu of %zu input beats (%ld frames of %ld beats); it ran "
                 "%ld cycles past its last output\n", ip, n_in, frames, in_beats, drain);
    return 4;
  }
  return 0;
}
