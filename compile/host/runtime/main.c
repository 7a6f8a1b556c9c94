/* bhpe_host: the host application (docs/host.md).
 *
 *   bhpe_host kernel NAME IN.bin OUT.bin REPS PARAMS...   run one host kernel REPS times on the float32 inputs in
 *                                                         IN.bin, write its float32 outputs to OUT.bin
 *   bhpe_host engine DIR FRAME.bin OUT.bin --regs PHYS --dram PHYS [--uio /dev/uioN] [--max-polls N]
 *                                                         run a compiled engine program (DIR = OUT/engine with
 *                                                         host.txt) on one frame (int32 (H, W, C)) through the
 *                                                         engine's AXI-Lite registers; Linux only (/dev/mem, UIO)
 *   bhpe_host info DIR                                    load a program and print what the loader read
 *   bhpe_host pack DIR FRAME.bin IMAGE.bin [BASE]         the program's DRAM image with the frame written in (and
 *                                                         its descriptors relocated to BASE when given)
 *   bhpe_host unpack DIR IMAGE.bin OUT.bin                the output tensor (int32 (H, W, C)) of an image
 */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bhpe_engine.h"
#include "bhpe_host.h"

#if defined(__linux__)
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#define BHPE_HAVE_MMAP 1
#endif

static int fail(const char *msg) {
  fprintf(stderr, "bhpe_host: %s\n", msg);
  return 2;
}

static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(len > 0 ? (size_t)len : 1);
  if (b && len > 0 && fread(b, 1, (size_t)len, f) != (size_t)len) { free(b); b = NULL; }
  fclose(f);
  *n = len > 0 ? (size_t)len : 0;
  return b;
}

static int write_out(const char *path, const void *data, size_t bytes) {
  FILE *f = fopen(path, "wb");
  if (!f) return 0;
  size_t w = fwrite(data, 1, bytes, f);
  fclose(f);
  return w == bytes;
}

/* ---- kernel ------------------------------------------------------------------------------------------------ */

static int run_kernel(int argc, char **argv) {
  if (argc < 6) return fail("usage: kernel NAME IN.bin OUT.bin REPS PARAMS...");
  const char *name = argv[2];
  size_t nbytes = 0;
  unsigned char *raw = slurp(argv[3], &nbytes);
  if (!raw) return fail("cannot read the input file");
  const float *in = (const float *)raw;
  size_t nin = nbytes / 4;
  long reps = atol(argv[5]);
  int np = argc - 6;
  char **pa = argv + 6;
#define PI(i) atoi(pa[i])
#define PF(i) ((float)atof(pa[i]))
#define NEED(n, what)                                              \
  do {                                                             \
    if (np != (n)) { free(raw); return fail("kernel " what); }     \
  } while (0)
  size_t nout = 0, need = 0;
  float *out = NULL;
  int rc = 0;
  if (!strcmp(name, "resize")) {
    NEED(5, "resize C H W OH OW");
    need = (size_t)PI(0) * PI(1) * PI(2);
    nout = (size_t)PI(0) * PI(3) * PI(4);
  } else if (!strcmp(name, "soft_argmax_2d")) {
    NEED(3, "soft_argmax_2d K H W");
    need = (size_t)PI(0) * PI(1) * PI(2);
    nout = 2 * (size_t)PI(0);
  } else if (!strcmp(name, "soft_argmax_3d")) {
    NEED(4, "soft_argmax_3d J D H W");
    need = (size_t)PI(0) * PI(1) * PI(2) * PI(3);
    nout = 3 * (size_t)PI(0);
  } else if (!strcmp(name, "crop_box")) {
    NEED(6, "crop_box N IMG_H IMG_W CROP_H CROP_W SCALE");
    need = 4 * (size_t)PI(0);
    nout = need;
  } else if (!strcmp(name, "roi_align")) {
    NEED(6, "roi_align C H W OH OW MIN_SIZE (inputs: image, box)");
    need = (size_t)PI(0) * PI(1) * PI(2) + 4;
    nout = (size_t)PI(0) * PI(3) * PI(4);
  } else if (!strcmp(name, "sample_features")) {
    NEED(4, "sample_features C H W K (inputs: features, points)");
    need = (size_t)PI(0) * PI(1) * PI(2) + 2 * (size_t)PI(3);
    nout = (size_t)PI(0) * PI(3);
  } else if (!strcmp(name, "linear")) {
    NEED(3, "linear IN OUT HAS_BIAS (inputs: x, weight, bias)");
    need = (size_t)PI(0) + (size_t)PI(0) * PI(1) + (PI(2) ? (size_t)PI(1) : 0);
    nout = (size_t)PI(1);
  } else if (!strcmp(name, "mean_pool")) {
    NEED(3, "mean_pool C H W");
    need = (size_t)PI(0) * PI(1) * PI(2);
    nout = (size_t)PI(0);
  } else if (!strcmp(name, "rot6d_to_axis_angle")) {
    NEED(1, "rot6d_to_axis_angle N");
    need = 6 * (size_t)PI(0);
    nout = 3 * (size_t)PI(0);
  } else if (!strcmp(name, "smplx")) {
    NEED(3, "smplx V J B (inputs: v_template, shapedirs, posedirs, j_regressor, weights, parents (int32), betas, "
            "pose)");
    size_t V = PI(0), J = PI(1), B = PI(2);
    need = V * 3 + V * 3 * B + V * 3 * (J - 1) * 9 + J * V + V * J + J + B + J * 3;
    nout = V * 3 + J * 3;
  } else {
    free(raw);
    return fail("unknown kernel (resize, soft_argmax_2d, soft_argmax_3d, crop_box, roi_align, sample_features, "
                "linear, mean_pool, rot6d_to_axis_angle, smplx)");
  }
  if (nin != need) {
    fprintf(stderr, "bhpe_host: kernel %s: the input file holds %zu values, the parameters need %zu\n", name, nin,
            need);
    free(raw);
    return 2;
  }
  out = calloc(nout ? nout : 1, sizeof(float));
  if (!out) { free(raw); return fail("out of memory"); }
  for (long r = 0; r < reps; r++) {
    if (!strcmp(name, "resize")) bhpe_resize_bilinear(in, PI(0), PI(1), PI(2), out, PI(3), PI(4));
    else if (!strcmp(name, "soft_argmax_2d")) bhpe_soft_argmax_2d(in, PI(0), PI(1), PI(2), out);
    else if (!strcmp(name, "soft_argmax_3d")) bhpe_soft_argmax_3d(in, PI(0), PI(1), PI(2), PI(3), out);
    else if (!strcmp(name, "crop_box")) bhpe_crop_box(in, PI(0), PI(1), PI(2), PI(3), PI(4), PF(5), out);
    else if (!strcmp(name, "roi_align")) {
      size_t n = (size_t)PI(0) * PI(1) * PI(2);
      bhpe_roi_align(in, PI(0), PI(1), PI(2), in + n, PI(3), PI(4), PF(5), out);
    } else if (!strcmp(name, "sample_features")) {
      size_t n = (size_t)PI(0) * PI(1) * PI(2);
      bhpe_sample_features(in, PI(0), PI(1), PI(2), in + n, PI(3), out);
    } else if (!strcmp(name, "linear")) {
      size_t ni = PI(0), no = PI(1);
      bhpe_linear(in, (int)ni, in + ni, PI(2) ? in + ni + ni * no : NULL, (int)no, out);
    } else if (!strcmp(name, "mean_pool")) bhpe_mean_pool(in, PI(0), PI(1), PI(2), out);
    else if (!strcmp(name, "rot6d_to_axis_angle")) bhpe_rot6d_to_axis_angle(in, PI(0), out);
    else {
      size_t V = PI(0), J = PI(1), B = PI(2);
      bhpe_smplx_t m;
      const float *p = in;
      m.n_verts = (int)V; m.n_joints = (int)J; m.n_betas = (int)B;
      m.v_template = p; p += V * 3;
      m.shapedirs = p; p += V * 3 * B;
      m.posedirs = p; p += V * 3 * (J - 1) * 9;
      m.j_regressor = p; p += J * V;
      m.weights = p; p += V * J;
      m.parents = (const int32_t *)p; p += J;
      const float *betas = p; p += B;
      rc = bhpe_smplx_lbs(&m, betas, p, out, out + V * 3);
      if (rc) break;
    }
  }
  if (rc) { free(raw); free(out); fprintf(stderr, "bhpe_host: smplx: error %d\n", rc); return 3; }
  int ok = write_out(argv[4], out, nout * sizeof(float));
  free(raw);
  free(out);
  return ok ? 0 : fail("cannot write the output file");
}

/* ---- engine ------------------------------------------------------------------------------------------------ */

static int run_info(int argc, char **argv) {
  if (argc != 3) return fail("usage: info DIR");
  bhpe_program_t p;
  char err[512];
  if (bhpe_program_load(argv[2], &p, err, sizeof err) != BHPE_OK) return fail(err);
  printf("image_bytes=%zu desc_addr=%llu n_desc=%u has_io=%d\n", p.image_bytes, (unsigned long long)p.desc_addr,
         p.n_desc, p.has_io);
  if (p.has_io)
    printf("frame h=%u w=%u c=%u s2d=%d\ninput addr=%llu words=%u\noutput addr=%llu h=%u w=%u c=%u\n", p.in_h, p.in_w,
           p.in_c, p.input_s2d, (unsigned long long)p.input.addr, p.input.words, (unsigned long long)p.output.addr,
           p.output.h, p.output.w, p.output.c);
  bhpe_program_free(&p);
  return 0;
}

static int run_pack(int argc, char **argv) {
  if (argc != 5 && argc != 6) return fail("usage: pack DIR FRAME.bin IMAGE.bin [BASE]");
  bhpe_program_t p;
  char err[512];
  if (bhpe_program_load(argv[2], &p, err, sizeof err) != BHPE_OK) return fail(err);
  size_t nf = 0;
  unsigned char *frame = slurp(argv[3], &nf);
  if (!p.has_io || !frame || nf != (size_t)p.in_h * p.in_w * p.in_c * 4) {
    free(frame);
    bhpe_program_free(&p);
    return fail("pack: no host.txt, or the frame file is not the program's (H, W, C) int32 input");
  }
  bhpe_program_write_input(&p, p.image, (const int32_t *)frame);
  free(frame);
  if (argc == 6) bhpe_program_relocate(p.image, p.desc_addr, p.n_desc, strtoull(argv[5], NULL, 0));
  int ok = write_out(argv[4], p.image, p.image_bytes);
  bhpe_program_free(&p);
  return ok ? 0 : fail("cannot write the image");
}

static int run_unpack(int argc, char **argv) {
  if (argc != 5) return fail("usage: unpack DIR IMAGE.bin OUT.bin");
  bhpe_program_t p;
  char err[512];
  if (bhpe_program_load(argv[2], &p, err, sizeof err) != BHPE_OK) return fail(err);
  size_t ni = 0;
  unsigned char *img = slurp(argv[3], &ni);
  if (!p.has_io || !img || ni != p.image_bytes) {
    free(img);
    bhpe_program_free(&p);
    return fail("unpack: no host.txt, or the image is not the program's size");
  }
  size_t n = (size_t)p.output.h * p.output.w * p.output.c;
  int32_t *q = malloc(n * 4 + 4);
  int ok = 0;
  if (q) {
    bhpe_tensor_read(img, &p.output, q);
    ok = write_out(argv[4], q, n * 4);
  }
  free(q);
  free(img);
  bhpe_program_free(&p);
  return ok ? 0 : fail("cannot write the output");
}

#ifdef BHPE_HAVE_MMAP
static void *map_phys(int fd, unsigned long long phys, size_t len, size_t *off) {
  long pg = sysconf(_SC_PAGESIZE);
  unsigned long long base = phys & ~(unsigned long long)(pg - 1);
  *off = (size_t)(phys - base);
  void *m = mmap(NULL, len + *off, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)base);
  return m == MAP_FAILED ? NULL : m;
}

static int run_engine(int argc, char **argv) {
  if (argc < 5) return fail("usage: engine DIR FRAME.bin OUT.bin --regs PHYS --dram PHYS [--uio DEV] [--max-polls N]");
  unsigned long long regs_phys = 0, dram_phys = 0, max_polls = 0;
  const char *uio = NULL;
  int have_regs = 0, have_dram = 0;
  for (int i = 5; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--regs")) { regs_phys = strtoull(argv[i + 1], NULL, 0); have_regs = 1; }
    else if (!strcmp(argv[i], "--dram")) { dram_phys = strtoull(argv[i + 1], NULL, 0); have_dram = 1; }
    else if (!strcmp(argv[i], "--uio")) uio = argv[i + 1];
    else if (!strcmp(argv[i], "--max-polls")) max_polls = strtoull(argv[i + 1], NULL, 0);
    else return fail("engine: unknown option");
  }
  if (!have_dram || (!have_regs && !uio)) return fail("engine: --dram PHYS and --regs PHYS (or --uio DEV) are needed");
  bhpe_program_t p;
  char err[512];
  if (bhpe_program_load(argv[2], &p, err, sizeof err) != BHPE_OK) return fail(err);
  if (!p.has_io) { bhpe_program_free(&p); return fail("engine: the program directory has no host.txt"); }
  size_t nf = 0;
  unsigned char *frame = slurp(argv[3], &nf);
  if (!frame || nf != (size_t)p.in_h * p.in_w * p.in_c * 4) {
    free(frame);
    bhpe_program_free(&p);
    return fail("engine: the frame file is not the program's (H, W, C) int32 input");
  }
  bhpe_program_write_input(&p, p.image, (const int32_t *)frame);
  free(frame);
  bhpe_program_relocate(p.image, p.desc_addr, p.n_desc, dram_phys);
  int memfd = open("/dev/mem", O_RDWR | O_SYNC);
  if (memfd < 0) { bhpe_program_free(&p); return fail("engine: cannot open /dev/mem (root needed)"); }
  size_t doff = 0, roff = 0;
  uint8_t *dram = map_phys(memfd, dram_phys, p.image_bytes, &doff);
  int regfd = uio ? open(uio, O_RDWR | O_SYNC) : memfd;
  volatile uint32_t *regs = NULL;
  if (regfd >= 0) regs = uio ? mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, regfd, 0)
                             : map_phys(regfd, regs_phys, BHPE_REG_SPAN, &roff);
  if (!dram || !regs || regs == MAP_FAILED) {
    bhpe_program_free(&p);
    return fail("engine: cannot map the DRAM buffer or the registers");
  }
  regs = (volatile uint32_t *)((volatile uint8_t *)regs + roff);
  memcpy(dram + doff, p.image, p.image_bytes);
  bhpe_engine_t e;
  bhpe_run_t r;
  bhpe_engine_init(&e, regs);
  int rc = bhpe_engine_run(&e, dram_phys + p.desc_addr, max_polls, &r);
  if (rc != BHPE_OK) {
    fprintf(stderr, "bhpe_host: engine: %s (layer %u)\n", bhpe_engine_strerror(rc, r.error), r.layer);
    bhpe_program_free(&p);
    return 3;
  }
  size_t n = (size_t)p.output.h * p.output.w * p.output.c;
  int32_t *q = malloc(n * 4 + 4);
  bhpe_tensor_read(dram + doff, &p.output, q);
  int ok = write_out(argv[4], q, n * 4);
  printf("cycles=%llu polls=%llu\n", (unsigned long long)r.cycles, (unsigned long long)r.polls);
  free(q);
  bhpe_program_free(&p);
  return ok ? 0 : fail("cannot write the output file");
}
#else
static int run_engine(int argc, char **argv) {
  (void)argc;
  (void)argv;
  return fail("engine: needs Linux (/dev/mem or UIO)");
}
#endif

int main(int argc, char **argv) {
  if (argc < 2) return fail("usage: bhpe_host kernel|engine|info|pack|unpack ...");
  if (!strcmp(argv[1], "kernel")) return run_kernel(argc, argv);
  if (!strcmp(argv[1], "engine")) return run_engine(argc, argv);
  if (!strcmp(argv[1], "info")) return run_info(argc, argv);
  if (!strcmp(argv[1], "pack")) return run_pack(argc, argv);
  if (!strcmp(argv[1], "unpack")) return run_unpack(argc, argv);
  return fail("unknown command (kernel, engine, info, pack, unpack)");
}
