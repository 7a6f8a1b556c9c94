/* The engine driver and the program loader (bhpe_engine.h; docs/host.md). */
#include "bhpe_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- driver ---------------------------------------------------------------------------------------------- */

void bhpe_engine_init(bhpe_engine_t *e, volatile uint32_t *base) { e->base = base; }

int bhpe_engine_start(bhpe_engine_t *e, uint64_t desc_addr) {
  if (bhpe_reg_read(e, BHPE_REG_STATUS) & BHPE_STATUS_BUSY) return BHPE_E_BUSY;
  bhpe_reg_write(e, BHPE_REG_DESC_LO, (uint32_t)desc_addr);
  bhpe_reg_write(e, BHPE_REG_DESC_HI, (uint32_t)(desc_addr >> 32));
  bhpe_reg_write(e, BHPE_REG_CTRL, 1u);
  return BHPE_OK;
}

int bhpe_engine_wait(bhpe_engine_t *e, uint64_t max_polls, bhpe_run_t *r) {
  uint32_t st = 0;
  uint64_t n = 0;
  for (;;) {
    st = bhpe_reg_read(e, BHPE_REG_STATUS);
    n++;
    if (st & BHPE_STATUS_DONE) break;
    if (max_polls && n >= max_polls) {
      r->status = st;
      r->polls = n;
      r->layer = bhpe_reg_read(e, BHPE_REG_LAYER);
      r->error = 0;
      r->cycles = 0;
      return BHPE_E_TIMEOUT;
    }
  }
  uint32_t lo = bhpe_reg_read(e, BHPE_REG_CYCLES_LO);
  uint32_t hi = bhpe_reg_read(e, BHPE_REG_CYCLES_HI);
  r->cycles = ((uint64_t)hi << 32) | lo;
  r->error = bhpe_reg_read(e, BHPE_REG_ERROR);
  r->layer = bhpe_reg_read(e, BHPE_REG_LAYER);
  r->status = st;
  r->polls = n;
  return (st & BHPE_STATUS_ERROR) || r->error ? BHPE_E_ENGINE : BHPE_OK;
}

int bhpe_engine_run(bhpe_engine_t *e, uint64_t desc_addr, uint64_t max_polls, bhpe_run_t *r) {
  int rc = bhpe_engine_start(e, desc_addr);
  if (rc != BHPE_OK) return rc;
  return bhpe_engine_wait(e, max_polls, r);
}

const char *bhpe_engine_strerror(int rc, uint32_t error) {
  switch (rc) {
    case BHPE_OK: return "ok";
    case BHPE_E_BUSY: return "the engine is busy (STATUS.busy): start refused";
    case BHPE_E_TIMEOUT: return "timeout: STATUS.done not seen";
    case BHPE_E_IO: return "file or mapping error";
    case BHPE_E_ENGINE:
      switch (error) {
        case 1: return "engine ERROR 1: an AXI read response was not OKAY";
        case 2: return "engine ERROR 2: an AXI write response was not OKAY";
        case 3: return "engine ERROR 3: bad descriptor";
        default: return "engine error (STATUS.error)";
      }
    default: return "unknown error";
  }
}

/* ---- little-endian helpers -------------------------------------------------------------------------------- */

static uint64_t ld64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

static void st64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- tensors ---------------------------------------------------------------------------------------------- */

void bhpe_tensor_write(uint8_t *image, const bhpe_tensor_t *t, const int32_t *q) {
  const uint64_t mask = t->ew == 64 ? ~0ull : ((1ull << t->ew) - 1);
  for (uint32_t px = 0; px < t->h * t->w; px++) {
    uint8_t *dst = image + t->addr + (uint64_t)px * t->pix_stride * 8;
    for (uint32_t wd = 0; wd < t->words; wd++) {
      uint64_t word = 0;
      uint32_t per = 64 / t->ew;
      for (uint32_t e = 0; e < per; e++) {
        uint32_t c = wd * per + e;
        if (c >= t->c) break;
        word |= ((uint64_t)(int64_t)q[(size_t)px * t->c + c] & mask) << (e * t->ew);
      }
      st64(dst + 8 * wd, word);
    }
  }
}

void bhpe_tensor_read(const uint8_t *image, const bhpe_tensor_t *t, int32_t *q) {
  const uint64_t mask = t->ew == 64 ? ~0ull : ((1ull << t->ew) - 1);
  const uint32_t per = 64 / t->ew;
  for (uint32_t px = 0; px < t->h * t->w; px++) {
    const uint8_t *src = image + t->addr + (uint64_t)px * t->pix_stride * 8;
    for (uint32_t c = 0; c < t->c; c++) {
      uint64_t word = ld64(src + 8 * (c / per));
      uint64_t v = (word >> ((c % per) * t->ew)) & mask;
      if (t->is_signed && t->ew < 64 && (v >> (t->ew - 1)) & 1) v |= ~mask;
      q[(size_t)px * t->c + c] = (int32_t)(int64_t)v;
    }
  }
}

void bhpe_program_write_input(const bhpe_program_t *p, uint8_t *image, const int32_t *frame) {
  if (!p->input_s2d) {
    bhpe_tensor_write(image, &p->input, frame);
    return;
  }
  /* pixel (y', x') channel (dy*2 + dx)*C + c = frame pixel (2y' + dy, 2x' + dx) channel c */
  const uint32_t H = p->in_h, W = p->in_w, C = p->in_c;
  int32_t *q = malloc(sizeof(int32_t) * (size_t)H * W * C);
  if (!q) return;
  for (uint32_t y = 0; y < H; y++)
    for (uint32_t x = 0; x < W; x++)
      for (uint32_t c = 0; c < C; c++) {
        uint32_t yy = y / 2, xx = x / 2, ch = ((y % 2) * 2 + (x % 2)) * C + c;
        q[((size_t)yy * (W / 2) + xx) * 4 * C + ch] = frame[((size_t)y * W + x) * C + c];
      }
  bhpe_tensor_write(image, &p->input, q);
  free(q);
}

/* ---- program ---------------------------------------------------------------------------------------------- */

static uint8_t *read_file(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 16, len = 0;
  uint8_t *buf = malloc(cap);
  while (buf) {
    size_t got = fread(buf + len, 1, cap - len, f);
    len += got;
    if (len < cap) break;
    uint8_t *nb = realloc(buf, cap * 2);
    if (!nb) { free(buf); buf = NULL; break; }
    buf = nb;
    cap *= 2;
  }
  fclose(f);
  *n = len;
  return buf;
}

static int parse_tensor(const char *line, const char *key, bhpe_tensor_t *t) {
  char name[32];
  unsigned long long addr;
  unsigned ps, h, w, c, ew, words, sg;
  if (sscanf(line, "%31s addr=%llu pix_stride=%u h=%u w=%u c=%u ew=%u words=%u signed=%u", name, &addr, &ps, &h, &w,
             &c, &ew, &words, &sg) != 9 || strcmp(name, key) != 0)
    return 0;
  if (ew == 0 || ew > 64 || 64 % ew != 0) return 0;
  t->addr = addr; t->pix_stride = ps; t->h = h; t->w = w; t->c = c; t->ew = ew; t->words = words; t->is_signed = sg;
  return 1;
}

static uint64_t tensor_end(const bhpe_tensor_t *t) {
  return (t->h && t->w) ? t->addr + ((uint64_t)(t->h * t->w - 1) * t->pix_stride + t->words) * 8 : t->addr;
}

int bhpe_program_load(const char *dir, bhpe_program_t *p, char *err, size_t err_len) {
  char path[4096];
  size_t nd = 0;
  memset(p, 0, sizeof(*p));
  snprintf(path, sizeof path, "%s/dram.bin", dir);
  p->image = read_file(path, &p->image_bytes);
  if (!p->image) { snprintf(err, err_len, "%s: cannot be read", path); return BHPE_E_IO; }
  snprintf(path, sizeof path, "%s/host.txt", dir);
  FILE *f = fopen(path, "r");
  if (f) {
    char line[512];
    int have_in = 0, have_out = 0, have_frame = 0;
    while (fgets(line, sizeof line, f)) {
      unsigned long long v;
      unsigned a, b, c, s;
      if (sscanf(line, "desc_addr=%llu", &v) == 1) p->desc_addr = v;
      else if (sscanf(line, "frame h=%u w=%u c=%u s2d=%u", &a, &b, &c, &s) == 4) {
        p->in_h = a; p->in_w = b; p->in_c = c; p->input_s2d = (int)s; have_frame = 1;
      } else if (parse_tensor(line, "input", &p->input)) have_in = 1;
      else if (parse_tensor(line, "output", &p->output)) have_out = 1;
    }
    fclose(f);
    if (!(have_in && have_out && have_frame)) {
      snprintf(err, err_len, "%s: needs the lines 'frame', 'input' and 'output'", path);
      bhpe_program_free(p);
      return BHPE_E_IO;
    }
    if (tensor_end(&p->input) > p->image_bytes || tensor_end(&p->output) > p->image_bytes) {
      snprintf(err, err_len, "%s: a tensor runs past the end of dram.bin (%zu bytes)", path, p->image_bytes);
      bhpe_program_free(p);
      return BHPE_E_IO;
    }
    p->has_io = 1;
  }
  snprintf(path, sizeof path, "%s/descriptors.bin", dir);
  uint8_t *d = read_file(path, &nd);
  if (!d) { snprintf(err, err_len, "%s: cannot be read", path); bhpe_program_free(p); return BHPE_E_IO; }
  int rc = BHPE_OK;
  if (nd == 0 || nd % BHPE_DESC_BYTES) {
    snprintf(err, err_len, "%s: %zu bytes, not a positive multiple of %u", path, nd, BHPE_DESC_BYTES);
    rc = BHPE_E_IO;
  } else if (p->desc_addr + nd > p->image_bytes || memcmp(p->image + p->desc_addr, d, nd) != 0) {
    snprintf(err, err_len, "%s differs from dram.bin at desc_addr %llu", path, (unsigned long long)p->desc_addr);
    rc = BHPE_E_IO;
  } else {
    uint32_t n = (uint32_t)(nd / BHPE_DESC_BYTES), i;
    for (i = 0; i < n; i++)
      if ((ld64(d + (size_t)i * BHPE_DESC_BYTES) >> 4) & 1) break;  /* word 0 bit 4: last */
    if (i == n) {
      snprintf(err, err_len, "%s: no descriptor has `last` set", path);
      rc = BHPE_E_IO;
    } else {
      p->n_desc = i + 1;
    }
  }
  free(d);
  if (rc != BHPE_OK) bhpe_program_free(p);
  return rc;
}

void bhpe_program_free(bhpe_program_t *p) {
  free(p->image);
  p->image = NULL;
  p->image_bytes = 0;
}

void bhpe_program_relocate(uint8_t *image, uint64_t desc_addr, uint32_t n_desc, uint64_t base) {
  for (uint32_t i = 0; i < n_desc; i++) {
    uint8_t *dsc = image + desc_addr + (uint64_t)i * BHPE_DESC_BYTES;
    for (int wd = 4; wd <= 8; wd++) st64(dsc + 8 * wd, ld64(dsc + 8 * wd) + base);
  }
}
