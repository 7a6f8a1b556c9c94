/* Driver of the layer-sequential engine through its AXI-Lite control registers (hw/rtl/engine/bhpe_eng_axil.sv,
 * docs/engine.md "Control registers"), and the loader of a compiled engine program (OUT/engine/). docs/host.md. */
#ifndef BHPE_ENGINE_H
#define BHPE_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* register byte offsets (bhpe_eng_axil: s_axil_*addr[7:2] selects the 32-bit register) */
#define BHPE_REG_CTRL 0x00u       /* bit 0: write 1 to start (ignored while busy) */
#define BHPE_REG_STATUS 0x04u     /* bit 0 done (sticky until the next start), bit 1 busy, bit 2 error */
#define BHPE_REG_DESC_LO 0x08u    /* descriptor list address (bytes), low / high word */
#define BHPE_REG_DESC_HI 0x0Cu
#define BHPE_REG_CYCLES_LO 0x10u  /* clock cycles from start to done */
#define BHPE_REG_CYCLES_HI 0x14u
#define BHPE_REG_LAYER 0x18u      /* layer_id of the descriptor being run */
#define BHPE_REG_ERROR 0x1Cu      /* 1 AXI read response not OKAY, 2 write response not OKAY, 3 bad descriptor */
#define BHPE_REG_SPAN 0x20u       /* bytes of register space the driver touches */

#define BHPE_STATUS_DONE 0x1u
#define BHPE_STATUS_BUSY 0x2u
#define BHPE_STATUS_ERROR 0x4u

/* driver return codes */
#define BHPE_OK 0
#define BHPE_E_BUSY (-1)     /* start refused: STATUS.busy was set */
#define BHPE_E_TIMEOUT (-2)  /* done not seen within max_polls STATUS reads */
#define BHPE_E_ENGINE (-3)   /* done with STATUS.error: see bhpe_run_t.error */
#define BHPE_E_IO (-4)       /* a file or mapping could not be opened / read / is malformed */

typedef struct {
  volatile uint32_t *base; /* the AXI-Lite slave's registers (a mapped page, or a test's register model) */
} bhpe_engine_t;

typedef struct {
  uint64_t cycles;  /* CYCLES */
  uint32_t error;   /* ERROR (0 when none) */
  uint32_t layer;   /* LAYER: the descriptor being run when the engine stopped */
  uint32_t status;  /* the STATUS read that showed done */
  uint64_t polls;   /* STATUS reads until done */
} bhpe_run_t;

/* Register access. Built with -DBHPE_REG_HOOKS, every access goes through these two functions, which the
 * program supplies (the tests' register model); otherwise they are volatile loads and stores at base + off. */
#ifdef BHPE_REG_HOOKS
uint32_t bhpe_reg_read(bhpe_engine_t *e, uint32_t off);
void bhpe_reg_write(bhpe_engine_t *e, uint32_t off, uint32_t v);
#else
static inline uint32_t bhpe_reg_read(bhpe_engine_t *e, uint32_t off) { return e->base[off >> 2]; }
static inline void bhpe_reg_write(bhpe_engine_t *e, uint32_t off, uint32_t v) { e->base[off >> 2] = v; }
#endif

void bhpe_engine_init(bhpe_engine_t *e, volatile uint32_t *base);
/* STATUS.busy -> BHPE_E_BUSY; else DESC_ADDR low, high, then CTRL = 1. */
int bhpe_engine_start(bhpe_engine_t *e, uint64_t desc_addr);
/* Poll STATUS until done (at most max_polls reads; 0: no limit), then read CYCLES low, high, ERROR, LAYER. */
int bhpe_engine_wait(bhpe_engine_t *e, uint64_t max_polls, bhpe_run_t *r);
/* start + wait */
int bhpe_engine_run(bhpe_engine_t *e, uint64_t desc_addr, uint64_t max_polls, bhpe_run_t *r);
const char *bhpe_engine_strerror(int rc, uint32_t error);

/* ---- the engine program ---------------------------------------------------------------------------------- */

#define BHPE_DESC_BYTES 256u

/* A tensor's place in the DRAM image (docs/engine.md "Data layout"): HWC, a pixel `words` 64-bit words at
 * addr + pixel * pix_stride * 8, channel c at bit c * ew of the pixel; signed elements are sign-extended. */
typedef struct {
  uint64_t addr;
  uint32_t pix_stride, h, w, c, ew, words, is_signed;
} bhpe_tensor_t;

typedef struct {
  uint8_t *image;         /* the DRAM image (dram.bin), image_bytes long */
  size_t image_bytes;
  uint64_t desc_addr;     /* descriptor list address in the image */
  uint32_t n_desc;        /* descriptors up to the one with `last` */
  int has_io;             /* host.txt was read: input / output places known */
  bhpe_tensor_t input, output;
  uint32_t in_h, in_w, in_c; /* the frame's (H, W, C) */
  int input_s2d;          /* the frame is stored space-to-depth ((H/2, W/2, 4C)) */
} bhpe_program_t;

/* Read DIR/dram.bin, DIR/descriptors.bin (checked: equal to the image at desc_addr, a `last` descriptor) and,
 * when present, DIR/host.txt (written by compile/host/program.py from program.json). Returns BHPE_OK or
 * BHPE_E_IO with a one-line reason in err (err_len bytes). */
int bhpe_program_load(const char *dir, bhpe_program_t *p, char *err, size_t err_len);
void bhpe_program_free(bhpe_program_t *p);
/* Add `base` to every descriptor's DRAM addresses (in, out, b, w, c: words 4..8) of `image`, for an image placed
 * at physical address `base`; the engine is then started at base + desc_addr. */
void bhpe_program_relocate(uint8_t *image, uint64_t desc_addr, uint32_t n_desc, uint64_t base);
/* Write / read a tensor's integers ((H, W, C) int32, row-major) in the image. */
void bhpe_tensor_write(uint8_t *image, const bhpe_tensor_t *t, const int32_t *q);
void bhpe_tensor_read(const uint8_t *image, const bhpe_tensor_t *t, int32_t *q);
/* The frame (in_h, in_w, in_c) into the program's input tensor (space-to-depth when input_s2d). */
void bhpe_program_write_input(const bhpe_program_t *p, uint8_t *image, const int32_t *frame);

#ifdef __cplusplus
}
#endif
#endif
