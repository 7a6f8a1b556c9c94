/* A software model of the engine's AXI-Lite control registers (bhpe_eng_axil + the control's done / busy / error /
 * CYCLES behaviour), for testing the driver without hardware. Built with -DBHPE_REG_HOOKS together with engine.c;
 * every register access is printed as "W <offset> <value>" or "R <offset> <value>" (hex), then the driver's result.
 *
 *   bhpe_regmodel SCENARIO DESC_ADDR(hex)
 *     ok       the run takes 5 STATUS polls; CYCLES = 0x100000005 (both words used)
 *     error    the run ends with ERROR 3 (bad descriptor), STATUS done + error
 *     busy     the engine is already busy: the driver must refuse to start
 *     timeout  the run never ends: the driver gives up after 10 polls
 *     rerun    a finished run (done sticky) is followed by a second run of 3 polls
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bhpe_engine.h"

static struct {
  uint32_t desc_lo, desc_hi, error, layer;
  int busy, done, polls_left, never_done, end_error;
  uint64_t cycles, run_cycles;
  uint64_t started_at; /* DESC_ADDR the engine latched at start */
  int starts;
} M;

static uint32_t status(void) { return (uint32_t)M.done | ((uint32_t)M.busy << 1) | ((uint32_t)(M.error != 0) << 2); }

uint32_t bhpe_reg_read(bhpe_engine_t *e, uint32_t off) {
  (void)e;
  uint32_t v = 0;
  switch (off) {
    case BHPE_REG_STATUS:
      v = status();
      if (M.busy && !M.never_done && --M.polls_left <= 0) { /* the run ends after this read */
        M.busy = 0;
        M.done = 1;
        M.cycles = M.run_cycles;
        M.error = M.end_error;
      }
      break;
    case BHPE_REG_DESC_LO: v = M.desc_lo; break;
    case BHPE_REG_DESC_HI: v = M.desc_hi; break;
    case BHPE_REG_CYCLES_LO: v = (uint32_t)M.cycles; break;
    case BHPE_REG_CYCLES_HI: v = (uint32_t)(M.cycles >> 32); break;
    case BHPE_REG_LAYER: v = M.layer; break;
    case BHPE_REG_ERROR: v = M.error; break;
    default: v = 0; break; /* other offsets read 0 */
  }
  printf("R %02x %08x\n", off, v);
  return v;
}

void bhpe_reg_write(bhpe_engine_t *e, uint32_t off, uint32_t v) {
  (void)e;
  printf("W %02x %08x\n", off, v);
  switch (off) {
    case BHPE_REG_CTRL:
      if ((v & 1u) && !M.busy) { /* start: done and error clear, busy until the run ends */
        M.busy = 1;
        M.done = 0;
        M.error = 0;
        M.cycles = 0;
        M.started_at = ((uint64_t)M.desc_hi << 32) | M.desc_lo;
        M.starts++;
      }
      break;
    case BHPE_REG_DESC_LO: M.desc_lo = v; break;
    case BHPE_REG_DESC_HI: M.desc_hi = v; break;
    default: break; /* read-only registers ignore writes */
  }
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: bhpe_regmodel ok|error|busy|timeout|rerun DESC_ADDR\n");
    return 2;
  }
  const char *sc = argv[1];
  uint64_t desc = strtoull(argv[2], NULL, 16);
  memset(&M, 0, sizeof M);
  M.polls_left = 5;
  M.run_cycles = 0x100000005ull;
  M.layer = 7;
  uint64_t max_polls = 1000;
  if (!strcmp(sc, "error")) { M.end_error = 3; M.layer = 2; }
  else if (!strcmp(sc, "busy")) { M.busy = 1; M.never_done = 1; }
  else if (!strcmp(sc, "timeout")) { M.never_done = 1; max_polls = 10; }
  else if (!strcmp(sc, "rerun")) { M.done = 1; M.cycles = 99; M.polls_left = 3; M.run_cycles = 1234; }
  else if (strcmp(sc, "ok") != 0) { fprintf(stderr, "unknown scenario %s\n", sc); return 2; }
  bhpe_engine_t e;
  bhpe_run_t r;
  memset(&r, 0, sizeof r);
  bhpe_engine_init(&e, NULL);
  int rc = bhpe_engine_run(&e, desc, max_polls, &r);
  printf("rc %d cycles %llu error %u layer %u polls %llu starts %d latched %llx\n", rc, (unsigned long long)r.cycles,
         r.error, r.layer, (unsigned long long)r.polls, M.starts, (unsigned long long)M.started_at);
  printf("msg %s\n", bhpe_engine_strerror(rc, r.error));
  return 0;
}
