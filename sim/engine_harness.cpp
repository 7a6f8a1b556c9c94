// Verilator harness of the layer-sequential engine (bhpe_engine): a C++ DRAM model on the AXI4 master port and an
// AXI-Lite master that starts the descriptor program and polls STATUS. No Python in the loop.
//
// usage: Veng --dram-in FILE --dram-out FILE --desc-addr N [--latency L] [--bpc B] [--stall P] [--seed S]
//             [--max-cycles N] [--idle-limit N] [--corrupt-read ADDR] [--stall-forever ar|r|aw|w|b]
//             [--json FILE] [--waves FILE] [+verilator+rand+reset+2 +verilator+seed+7 ...]
//
// The DRAM model (AXI4 slave, one ID, in order):
// - the DRAM is the image read from --dram-in (byte 0 = address 0); a burst outside it answers SLVERR;
// - AR and AW are accepted at once unless stalled; the first R beat of a burst comes --latency cycles after its AR
//   handshake (bursts pipeline, any number outstanding); a write response comes --latency cycles after the burst's
//   last W beat; W beats are accepted only for a burst whose AW was accepted;
// - bandwidth: --bpc 64-bit beats a cycle for reads and writes together (a credit bucket; R beats first);
// - --stall P: on every channel, every cycle, the model's ready (AR, AW, W) or the offer of a new beat (R, B) is
//   withheld with probability P (seeded by --seed); an offered R or B beat stays valid and unchanged until taken;
// - faults: --corrupt-read ADDR inverts every bit of each R beat read from the 8-byte word at ADDR;
//   --stall-forever CH never completes a handshake on channel CH from the start.
// The model checks the master: arsize/awsize 3 (8 bytes), INCR bursts, no burst across 4 KiB, wlast on exactly the
// burst's last beat; a violation ends the run (exit 5).
//
// Output: a line "layer <id> start <cycle>" per dbg_layer_start_o pulse, "done <cycles>" at the end, and with
// --json a file {"cycles", "harness_cycles", "layer_starts", "status", "error", "stats"}; --dram-out is the DRAM after
// the run (written also after a timeout or an engine error). Cycle 0 is the cycle of the CTRL.start write.
// Exit codes: 0 done without error; 2 bad usage or unreadable file; 3 timeout: no done within --max-cycles, or no
// AXI handshake for --idle-limit cycles (the message names the layer being run); 4 the engine reported an error
// (ERROR register); 5 AXI protocol violation by the engine; 6 the design called $finish/$stop. A failed assertion
// (stream / AXI checkers, built with --assert) ends the process with Verilator's "%Error" (exit 1 or abort).
// Initial state and reset values: +verilator+rand+reset+2 makes every register start random (the build uses
// --x-initial unique), so a missing reset shows.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "Vbhpe_engine.h"
#include "verilated.h"
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

struct Burst {
  uint64_t addr;
  unsigned len;     // beats
  unsigned beat;    // next beat
  uint64_t ready;   // cycle from which the (first) beat / response may go
  bool err;
};

enum Chan { AR = 0, R = 1, AW = 2, W = 3, B = 4, NCHAN = 5 };
static const char* chan_name[NCHAN] = {"ar", "r", "aw", "w", "b"};

int main(int argc, char** argv) {
  std::string dram_in, dram_out, json, waves;
  uint64_t desc_addr = 0, max_cycles = 10000000, idle_limit = 1000000, corrupt_addr = ~0ULL, seed = 1;
  unsigned latency = 20;
  double bpc = 1.0, stall = 0.0;
  int stall_forever = -1;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a[0] == '+') continue;  // Verilator plusargs
    if (i + 1 >= argc) { std::fprintf(stderr, "usage: option %s needs a value\n", a.c_str()); return 2; }
    std::string v = argv[++i];
    if (a == "--dram-in") dram_in = v;
    else if (a == "--dram-out") dram_out = v;
    else if (a == "--json") json = v;
    else if (a == "--waves") waves = v;
    else if (a == "--desc-addr") desc_addr = std::strtoull(v.c_str(), nullptr, 0);
    else if (a == "--latency") latency = (unsigned)std::strtoul(v.c_str(), nullptr, 0);
    else if (a == "--bpc") bpc = std::atof(v.c_str());
    else if (a == "--stall") stall = std::atof(v.c_str());
    else if (a == "--seed") seed = std::strtoull(v.c_str(), nullptr, 0);
    else if (a == "--max-cycles") max_cycles = std::strtoull(v.c_str(), nullptr, 0);
    else if (a == "--idle-limit") idle_limit = std::strtoull(v.c_str(), nullptr, 0);
    else if (a == "--corrupt-read") corrupt_addr = std::strtoull(v.c_str(), nullptr, 0) & ~7ULL;
    else if (a == "--stall-forever") {
      for (int c = 0; c < NCHAN; c++) if (v == chan_name[c]) stall_forever = c;
      if (stall_forever < 0) { std::fprintf(stderr, "usage: --stall-forever takes ar, r, aw, w or b\n"); return 2; }
    } else { std::fprintf(stderr, "usage: unknown option %s\n", a.c_str()); return 2; }
  }
  if (dram_in.empty()) { std::fprintf(stderr, "usage: --dram-in FILE is required\n"); return 2; }
  if (bpc <= 0.0 || bpc > 1.0) { std::fprintf(stderr, "usage: --bpc must be in (0, 1] (one 64-bit port)\n"); return 2; }
  std::vector<uint8_t> mem;
  {
    std::ifstream f(dram_in, std::ios::binary);
    if (!f) { std::fprintf(stderr, "cannot read %s\n", dram_in.c_str()); return 2; }
    mem.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;
  const uint32_t stall_thr = (uint32_t)(stall * 4294967295.0);
  auto stalled = [&](int ch) { return ch == stall_forever || (stall_thr && rnd() < stall_thr); };

  VerilatedContext ctx;
  ctx.commandArgs(argc, argv);
  Vbhpe_engine top(&ctx);
#if VM_TRACE
  VerilatedFstC* tfp = nullptr;
  if (!waves.empty()) {
    ctx.traceEverOn(true);
    tfp = new VerilatedFstC;
    top.trace(tfp, 99);
    tfp->open(waves.c_str());
  }
#endif
  uint64_t t = 0;
  auto tick = [&]() {
    top.clk_i = 1;
    top.eval();
#if VM_TRACE
    if (tfp) tfp->dump(t * 10 + 5);
#endif
    top.clk_i = 0;
    top.eval();
#if VM_TRACE
    if (tfp) tfp->dump(t * 10 + 10);
#endif
    t++;
  };
  auto write_dram = [&]() {
    if (dram_out.empty()) return;
    std::ofstream f(dram_out, std::ios::binary);
    f.write((const char*)mem.data(), (std::streamsize)mem.size());
  };

  // ---- reset ----------------------------------------------------------------------------------------------
  top.clk_i = 0;
  top.rst_ni = 0;
  top.s_axil_awvalid = 0;
  top.s_axil_wvalid = 0;
  top.s_axil_bready = 0;
  top.s_axil_arvalid = 0;
  top.s_axil_rready = 0;
  top.m_axi_arready = 0;
  top.m_axi_rvalid = 0;
  top.m_axi_awready = 0;
  top.m_axi_wready = 0;
  top.m_axi_bvalid = 0;
  top.eval();
  for (int i = 0; i < 4; i++) tick();
  top.rst_ni = 1;
  top.eval();
  tick();

  // ---- the AXI-Lite master: a list of register writes, then STATUS polls, then the final reads -------------
  struct LiteOp { bool write; uint8_t addr; uint32_t data; };
  std::deque<LiteOp> lite = {{true, 0x08, (uint32_t)desc_addr}, {true, 0x0C, (uint32_t)(desc_addr >> 32)},
                             {true, 0x00, 1u}};
  bool lite_busy = false, aw_done = false, w_done = false, started = false, finished = false;
  uint64_t t_start = 0, t_done = 0, next_poll = 0;
  uint32_t status = 0, reg_cycles_lo = 0, reg_cycles_hi = 0, reg_error = 0, reg_layer = 0;
  int final_reads = -1;  // after done: read CYCLES lo, hi, ERROR, LAYER

  // ---- DRAM model state -----------------------------------------------------------------------------------
  std::deque<Burst> rq, wq, bq;  // reads in flight, writes accepted (awaiting W), responses due
  bool r_offered = false, b_offered = false;
  double credit = 0.0;
  uint64_t idle = 0;
  struct { uint64_t ar = 0, r = 0, aw = 0, w = 0, b = 0, rd_bytes = 0, wr_bytes = 0; } st;
  std::vector<std::pair<uint32_t, uint64_t>> layer_starts;
  auto protocol = [&](const char* what) {
    std::fprintf(stderr, "AXI protocol error at cycle %llu: %s\n", (unsigned long long)(t - t_start), what);
    write_dram();
    std::exit(5);
  };

  for (;;) {
    // ---- drive the model's outputs for this cycle ----
    credit = std::min(credit + bpc, 1.0 + bpc);
    top.m_axi_arready = !stalled(AR);
    top.m_axi_awready = !stalled(AW);
    if (!r_offered && !rq.empty() && rq.front().ready <= t && credit >= 1.0 && !stalled(R)) {
      Burst& b = rq.front();
      const uint64_t a = b.addr + 8ULL * b.beat;
      uint64_t d = 0;
      if (!b.err) std::memcpy(&d, &mem[a], 8);
      if (a == corrupt_addr) d = ~d;
      top.m_axi_rdata = d;
      top.m_axi_rresp = b.err ? 2 : 0;
      top.m_axi_rlast = (b.beat + 1 == b.len);
      top.m_axi_rid = 0;
      r_offered = true;
      credit -= 1.0;
    }
    top.m_axi_rvalid = r_offered;
    top.m_axi_wready = !wq.empty() && credit >= 1.0 && !stalled(W);
    if (!b_offered && !bq.empty() && bq.front().ready <= t && !stalled(B)) {
      top.m_axi_bresp = bq.front().err ? 2 : 0;
      top.m_axi_bid = 0;
      b_offered = true;
    }
    top.m_axi_bvalid = b_offered;
    // AXI-Lite
    if (!lite_busy && !lite.empty()) {
      lite_busy = true;
      aw_done = w_done = false;
    }
    const LiteOp* op = lite_busy ? &lite.front() : nullptr;
    top.s_axil_awvalid = op && op->write && !aw_done;
    top.s_axil_awaddr = op ? op->addr : 0;
    top.s_axil_wvalid = op && op->write && !w_done;
    top.s_axil_wdata = op ? op->data : 0;
    top.s_axil_wstrb = 0xF;
    top.s_axil_bready = 1;
    top.s_axil_arvalid = op && !op->write && !aw_done;
    top.s_axil_araddr = op ? op->addr : 0;
    top.s_axil_rready = 1;
    top.eval();

    // ---- handshakes ----
    bool moved = false;
    if (top.m_axi_arvalid && top.m_axi_arready) {
      const uint64_t a = top.m_axi_araddr;
      const unsigned len = top.m_axi_arlen + 1u;
      if (top.m_axi_arsize != 3 || top.m_axi_arburst != 1) protocol("AR: not an INCR burst of 8-byte beats");
      if ((a & 7) || (a >> 12) != ((a + 8ULL * len - 1) >> 12)) protocol("AR: burst crosses a 4 KiB boundary");
      rq.push_back({a, len, 0, t + latency, a + 8ULL * len > mem.size()});
      st.ar++;
      moved = true;
    }
    if (r_offered && top.m_axi_rready) {
      Burst& b = rq.front();
      b.beat++;
      st.r++;
      st.rd_bytes += 8;
      r_offered = false;
      if (b.beat == b.len) rq.pop_front();
      moved = true;
    }
    if (top.m_axi_awvalid && top.m_axi_awready) {
      const uint64_t a = top.m_axi_awaddr;
      const unsigned len = top.m_axi_awlen + 1u;
      if (top.m_axi_awsize != 3 || top.m_axi_awburst != 1) protocol("AW: not an INCR burst of 8-byte beats");
      if ((a & 7) || (a >> 12) != ((a + 8ULL * len - 1) >> 12)) protocol("AW: burst crosses a 4 KiB boundary");
      wq.push_back({a, len, 0, 0, a + 8ULL * len > mem.size()});
      st.aw++;
      moved = true;
    }
    if (top.m_axi_wvalid && top.m_axi_wready) {
      Burst& b = wq.front();
      const uint64_t a = b.addr + 8ULL * b.beat;
      const bool last = (b.beat + 1 == b.len);
      if ((bool)top.m_axi_wlast != last) protocol("W: wlast not on the burst's last beat");
      if (!b.err) {
        const uint64_t d = top.m_axi_wdata;
        for (int k = 0; k < 8; k++)
          if ((top.m_axi_wstrb >> k) & 1) mem[a + k] = (uint8_t)(d >> (8 * k));
      }
      b.beat++;
      st.w++;
      st.wr_bytes += 8;
      credit -= 1.0;
      if (last) {
        bq.push_back({b.addr, b.len, 0, t + latency, b.err});
        wq.pop_front();
      }
      moved = true;
    }
    if (b_offered && top.m_axi_bready) {
      bq.pop_front();
      b_offered = false;
      st.b++;
      moved = true;
    }
    if (op) {
      if (op->write) {
        if (top.s_axil_awvalid && top.s_axil_awready) aw_done = true;
        if (top.s_axil_wvalid && top.s_axil_wready) w_done = true;
        if (top.s_axil_bvalid) {  // bready is 1
          if (op->addr == 0x00) {
            started = true;
            t_start = t;
          }
          lite.pop_front();
          lite_busy = false;
        }
      } else {
        if (top.s_axil_arvalid && top.s_axil_arready) aw_done = true;  // aw_done: the read address was taken
        if (top.s_axil_rvalid) {
          const uint32_t d = top.s_axil_rdata;
          const uint8_t addr = op->addr;
          switch (addr) {
            case 0x04: status = d; break;
            case 0x10: reg_cycles_lo = d; break;
            case 0x14: reg_cycles_hi = d; break;
            case 0x18: reg_layer = d; break;
            case 0x1C: reg_error = d; break;
          }
          lite.pop_front();
          lite_busy = false;
          if (addr == 0x04 && (status & 1) && final_reads < 0) {
            finished = true;
            t_done = t;
            final_reads = 4;
            lite.push_back({false, 0x10, 0});
            lite.push_back({false, 0x14, 0});
            lite.push_back({false, 0x1C, 0});
            lite.push_back({false, 0x18, 0});
          } else if (final_reads > 0) {
            final_reads--;
          }
        }
      }
    }
    if (top.dbg_layer_start_o) {
      layer_starts.push_back({(uint32_t)top.dbg_layer_o, t - t_start});
      std::printf("layer %u start %llu\n", (unsigned)top.dbg_layer_o, (unsigned long long)(t - t_start));
      std::fflush(stdout);
    }
    idle = moved ? 0 : idle + 1;
    tick();
    if (ctx.gotFinish()) {
      write_dram();
      std::fprintf(stderr, "the design ended the simulation ($finish or $stop) at cycle %llu\n",
                   (unsigned long long)(t - t_start));
      return 6;
    }
    if (started && !finished && lite.empty() && !lite_busy && t >= next_poll) {
      lite.push_back({false, 0x04, 0});  // poll STATUS every 16 cycles
      next_poll = t + 16;
    }
    if (finished && final_reads == 0) break;
    const uint64_t now = started ? t - t_start : 0;
    if (now > max_cycles || (started && idle > idle_limit)) {
      write_dram();
      const uint32_t lid = top.dbg_layer_o;
      std::fprintf(stderr, "TIMEOUT: %s after %llu cycles: DRAM model stalled / engine hung at layer %u "
                   "(outstanding: %zu read bursts, %zu write bursts, %zu write responses%s%s)\n",
                   now > max_cycles ? "no done" : "no AXI handshake for --idle-limit cycles",
                   (unsigned long long)now, lid, rq.size(), wq.size(), bq.size(),
                   stall_forever >= 0 ? "; channel stalled forever: " : "",
                   stall_forever >= 0 ? chan_name[stall_forever] : "");
#if VM_TRACE
      if (tfp) tfp->close();
#endif
      return 3;
    }
  }
#if VM_TRACE
  if (tfp) tfp->close();
#endif
  write_dram();
  const uint64_t reg_cycles = ((uint64_t)reg_cycles_hi << 32) | reg_cycles_lo;
  std::printf("done %llu\n", (unsigned long long)reg_cycles);
  if (!json.empty()) {
    std::FILE* f = std::fopen(json.c_str(), "w");
    std::fprintf(f, "{\"cycles\": %llu, \"harness_cycles\": %llu, \"status\": %u, \"error\": %u, \"layer\": %u, "
                 "\"layer_starts\": [", (unsigned long long)reg_cycles, (unsigned long long)(t_done - t_start),
                 status, reg_error, reg_layer);
    for (size_t i = 0; i < layer_starts.size(); i++)
      std::fprintf(f, "%s[%u, %llu]", i ? ", " : "", layer_starts[i].first,
                   (unsigned long long)layer_starts[i].second);
    std::fprintf(f, "], \"stats\": {\"ar\": %llu, \"r\": %llu, \"aw\": %llu, \"w\": %llu, \"b\": %llu, "
                 "\"dram_read_bytes\": %llu, \"dram_write_bytes\": %llu}}\n",
                 (unsigned long long)st.ar, (unsigned long long)st.r, (unsigned long long)st.aw,
                 (unsigned long long)st.w, (unsigned long long)st.b, (unsigned long long)st.rd_bytes,
                 (unsigned long long)st.wr_bytes);
    std::fclose(f);
  }
  if (reg_error != 0 || (status & 4)) {
    std::fprintf(stderr, "ENGINE ERROR %u (%s) at layer %u\n", reg_error,
                 reg_error == 1 ? "AXI read response not OKAY" : reg_error == 2 ? "AXI write response not OKAY"
                 : reg_error == 3 ? "bad descriptor" : "unknown", reg_layer);
    return 4;
  }
  return 0;
}
