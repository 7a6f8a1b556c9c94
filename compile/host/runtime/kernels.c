/* The host kernels of a BinaryHPE frame (bhpe_host.h; docs/host.md): each the C form of the PyTorch function of
 * train/ named in its comment. float32 data, double accumulation. */
#include "bhpe_host.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- separable bilinear interpolation ----------------------------------------------------------------------- */

/* One axis of a bilinear sample: neighbours i0, i1 (inside the axis, so always readable) and their weights (0 for a
 * neighbour outside the image: zero padding). */
typedef struct {
  int i0, i1;
  float w0, w1;
} bhpe_tap_t;

/* grid_sample (bilinear, zeros, align_corners=False) along an axis of n pixels at pixel coordinate u (pixel
 * centres at integers) */
static bhpe_tap_t tap_zero(float u, int n) {
  float f = floorf(u), a = u - f;
  int i = (int)f;
  bhpe_tap_t t;
  t.w0 = (i >= 0 && i < n) ? 1.0f - a : 0.0f;
  t.w1 = (i + 1 >= 0 && i + 1 < n) ? a : 0.0f;
  t.i0 = i < 0 ? 0 : (i > n - 1 ? n - 1 : i);
  t.i1 = i + 1 < 0 ? 0 : (i + 1 > n - 1 ? n - 1 : i + 1);
  return t;
}

/* upsample_bilinear2d (align_corners=False) output pixel o of n_out over n_in: src = (o + 0.5) * n_in/n_out - 0.5,
 * clamped at 0; the upper neighbour clamped to the last pixel */
static bhpe_tap_t tap_resize(int n_in, int n_out, int o) {
  float scale = (float)n_in / (float)n_out;
  float src = scale * ((float)o + 0.5f) - 0.5f;
  if (src < 0.0f) src = 0.0f;
  int a = (int)src;
  if (a > n_in - 1) a = n_in - 1;
  bhpe_tap_t t;
  t.i0 = a;
  t.i1 = a < n_in - 1 ? a + 1 : a;
  t.w1 = src - (float)a;
  t.w0 = 1.0f - t.w1;
  return t;
}

/* out (c, oh, ow) from in (c, h, w) with row taps ty[oh] and column taps tx[ow]: per output row, the two input rows
 * blended over the columns the taps read (lo .. hi), then each output a blend of two of those; when the outputs
 * are fewer than those columns, each output straight from its four pixels. */
static void separable(const float *in, int c, int h, int w, const bhpe_tap_t *ty, int oh, const bhpe_tap_t *tx,
                      int ow, float *out) {
  int lo = w - 1, hi = 0;
  for (int i = 0; i < ow; i++) {
    lo = tx[i].i0 < lo ? tx[i].i0 : lo;
    hi = tx[i].i1 > hi ? tx[i].i1 : hi;
  }
  if (hi - lo + 1 > ow) { /* fewer outputs than columns read (down-sampling): each output from its 4 pixels */
    for (int ch = 0; ch < c; ch++) {
      const float *p = in + (size_t)ch * h * w;
      for (int y = 0; y < oh; y++) {
        const float *r0 = p + (size_t)ty[y].i0 * w, *r1 = p + (size_t)ty[y].i1 * w;
        const float a = ty[y].w0, b = ty[y].w1;
        float *o = out + ((size_t)ch * oh + y) * ow;
        for (int i = 0; i < ow; i++)
          o[i] = a * (tx[i].w0 * r0[tx[i].i0] + tx[i].w1 * r0[tx[i].i1]) +
                 b * (tx[i].w0 * r1[tx[i].i0] + tx[i].w1 * r1[tx[i].i1]);
      }
    }
    return;
  }
  float tmp[w];
  for (int ch = 0; ch < c; ch++) {
    const float *p = in + (size_t)ch * h * w;
    for (int y = 0; y < oh; y++) {
      const float *r0 = p + (size_t)ty[y].i0 * w, *r1 = p + (size_t)ty[y].i1 * w;
      const float a = ty[y].w0, b = ty[y].w1;
      for (int x = lo; x <= hi; x++) tmp[x] = a * r0[x] + b * r1[x];
      float *o = out + ((size_t)ch * oh + y) * ow;
      for (int i = 0; i < ow; i++) o[i] = tx[i].w0 * tmp[tx[i].i0] + tx[i].w1 * tmp[tx[i].i1];
    }
  }
}

void bhpe_resize_bilinear(const float *in, int c, int h, int w, float *out, int oh, int ow) {
  bhpe_tap_t tx[ow], ty[oh];
  for (int i = 0; i < ow; i++) tx[i] = tap_resize(w, ow, i);
  for (int i = 0; i < oh; i++) ty[i] = tap_resize(h, oh, i);
  separable(in, c, h, w, ty, oh, tx, ow, out);
}

/* ---- soft-argmax ------------------------------------------------------------------------------------------- */

void bhpe_soft_argmax_2d(const float *hm, int k, int h, int w, float *out) {
  const size_t n = (size_t)h * w;
  for (int m = 0; m < k; m++) {
    const float *p = hm + m * n;
    float mx = p[0];
    for (size_t i = 1; i < n; i++) mx = p[i] > mx ? p[i] : mx;
    double s = 0.0, sx = 0.0, sy = 0.0;
    for (int y = 0; y < h; y++) {
      double row = 0.0;
      for (int x = 0; x < w; x++) {
        double e = expf(p[y * w + x] - mx);
        row += e;
        sx += e * (((double)x + 0.5) / w);
      }
      s += row;
      sy += row * (((double)y + 0.5) / h);
    }
    out[2 * m] = (float)(sx / s);
    out[2 * m + 1] = (float)(sy / s);
  }
}

void bhpe_soft_argmax_3d(const float *hm, int joints, int depth, int h, int w, float *out) {
  const size_t plane = (size_t)h * w, n = plane * depth;
  for (int j = 0; j < joints; j++) {
    const float *p = hm + j * n;
    float mx = p[0];
    for (size_t i = 1; i < n; i++) mx = p[i] > mx ? p[i] : mx;
    double s = 0.0, sx = 0.0, sy = 0.0, sz = 0.0;
    for (int d = 0; d < depth; d++) {
      double sd = 0.0;
      for (int y = 0; y < h; y++) {
        double row = 0.0;
        for (int x = 0; x < w; x++) {
          double e = expf(p[d * plane + y * w + x] - mx);
          row += e;
          sx += e * (((double)x + 0.5) / w);
        }
        sd += row;
        sy += row * (((double)y + 0.5) / h);
      }
      s += sd;
      sz += sd * (((double)d + 0.5) / depth);
    }
    out[3 * j] = (float)(sx / s);
    out[3 * j + 1] = (float)(sy / s);
    out[3 * j + 2] = (float)(sz / s);
  }
}

/* ---- boxes and crops --------------------------------------------------------------------------------------- */

void bhpe_crop_box(const float *boxes, int n, int img_h, int img_w, int crop_h, int crop_w, float scale, float *out) {
  const double aspect = (double)crop_w / crop_h;
  for (int i = 0; i < n; i++) {
    const float *b = boxes + 4 * i;
    double w_px = (double)b[2] * img_w, h_px = (double)b[3] * img_h;
    double w_new = w_px > h_px * aspect ? w_px : h_px * aspect;
    double h_new = h_px > w_px / aspect ? h_px : w_px / aspect;
    out[4 * i] = b[0];
    out[4 * i + 1] = b[1];
    out[4 * i + 2] = (float)(w_new * scale / img_w);
    out[4 * i + 3] = (float)(h_new * scale / img_h);
  }
}

void bhpe_roi_align(const float *img, int c, int h, int w, const float *box, int oh, int ow, float min_size,
                    float *out) {
  const float cx = box[0], cy = box[1];
  const float bw = box[2] > min_size ? box[2] : min_size, bh = box[3] > min_size ? box[3] : min_size;
  bhpe_tap_t tx[ow], ty[oh];
  /* bin centre in image units, then grid_sample's pixel coordinate u * n - 0.5; the grid is separable */
  for (int i = 0; i < ow; i++) tx[i] = tap_zero((cx + bw * (((float)i + 0.5f) / ow - 0.5f)) * w - 0.5f, w);
  for (int i = 0; i < oh; i++) ty[i] = tap_zero((cy + bh * (((float)i + 0.5f) / oh - 0.5f)) * h - 0.5f, h);
  separable(img, c, h, w, ty, oh, tx, ow, out);
}

void bhpe_sample_features(const float *feat, int c, int h, int w, const float *xy, int k, float *out) {
  for (int i = 0; i < k; i++) {
    bhpe_tap_t tx = tap_zero(xy[2 * i] * w - 0.5f, w), ty = tap_zero(xy[2 * i + 1] * h - 0.5f, h);
    const float w00 = ty.w0 * tx.w0, w01 = ty.w0 * tx.w1, w10 = ty.w1 * tx.w0, w11 = ty.w1 * tx.w1;
    const size_t o00 = (size_t)ty.i0 * w + tx.i0, o01 = (size_t)ty.i0 * w + tx.i1;
    const size_t o10 = (size_t)ty.i1 * w + tx.i0, o11 = (size_t)ty.i1 * w + tx.i1;
    for (int ch = 0; ch < c; ch++) {
      const float *p = feat + (size_t)ch * h * w;
      out[(size_t)i * c + ch] = (w00 * p[o00] + w01 * p[o01]) + (w10 * p[o10] + w11 * p[o11]);
    }
  }
}

/* ---- dense layers ------------------------------------------------------------------------------------------ */

/* sum a[i] * b[i]: sixteen float32 partial sums in four 4-lane vectors (GCC / Clang vector extension: NEON on the
 * A53, SSE on x86-64; IEEE lane operations, so both give the same bits; four independent chains keep an in-order
 * core issuing), added in double at the end. The error is within a few float32 ulps of sum |a[i] b[i]|. */
typedef float bhpe_v4sf __attribute__((vector_size(16)));

static double dot_f32(const float *a, const float *b, int n) {
  bhpe_v4sf s0 = {0.0f, 0.0f, 0.0f, 0.0f}, s1 = s0, s2 = s0, s3 = s0;
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    bhpe_v4sf a0, a1, a2, a3, b0, b1, b2, b3;
    memcpy(&a0, a + i, 16);
    memcpy(&a1, a + i + 4, 16);
    memcpy(&a2, a + i + 8, 16);
    memcpy(&a3, a + i + 12, 16);
    memcpy(&b0, b + i, 16);
    memcpy(&b1, b + i + 4, 16);
    memcpy(&b2, b + i + 8, 16);
    memcpy(&b3, b + i + 12, 16);
    s0 += a0 * b0;
    s1 += a1 * b1;
    s2 += a2 * b2;
    s3 += a3 * b3;
  }
  s0 += s2;
  s1 += s3;
  double s = (((double)s0[0] + (double)s1[0]) + ((double)s0[1] + (double)s1[1])) +
             (((double)s0[2] + (double)s1[2]) + ((double)s0[3] + (double)s1[3]));
  for (; i < n; i++) s += (double)a[i] * (double)b[i];
  return s;
}

void bhpe_linear(const float *x, int n_in, const float *weight, const float *bias, int n_out, float *y) {
  for (int o = 0; o < n_out; o++) {
    double acc = dot_f32(weight + (size_t)o * n_in, x, n_in);
    y[o] = (float)(bias ? acc + (double)bias[o] : acc);
  }
}

void bhpe_mean_pool(const float *feat, int c, int h, int w, float *out) {
  const int n = h * w;
  for (int ch = 0; ch < c; ch++) { /* eight float32 partial sums in two vectors, added in double */
    const float *p = feat + (size_t)ch * n;
    bhpe_v4sf s0 = {0.0f, 0.0f, 0.0f, 0.0f}, s1 = {0.0f, 0.0f, 0.0f, 0.0f};
    int i = 0;
    for (; i + 8 <= n; i += 8) {
      bhpe_v4sf a0, a1;
      memcpy(&a0, p + i, 16);
      memcpy(&a1, p + i + 4, 16);
      s0 += a0;
      s1 += a1;
    }
    double s = (((double)s0[0] + (double)s1[0]) + ((double)s0[1] + (double)s1[1])) +
               (((double)s0[2] + (double)s1[2]) + ((double)s0[3] + (double)s1[3]));
    for (; i < n; i++) s += p[i];
    out[ch] = (float)(s / (double)n);
  }
}

/* ---- rotations --------------------------------------------------------------------------------------------- */

static void normalize3(double *v) {
  double n = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  if (n < 1e-12) n = 1e-12; /* F.normalize's eps */
  v[0] /= n;
  v[1] /= n;
  v[2] /= n;
}

static double sqrt_pos(double x) { return x > 0.0 ? sqrt(x) : 0.0; }

/* rot6d_to_matrix: x viewed as (3, 2), Gram-Schmidt of its two columns; matrix_to_axis_angle: through the
 * best-conditioned quaternion, as train/wholebody.py. */
void bhpe_rot6d_to_axis_angle(const float *x6, int n, float *aa) {
  for (int r = 0; r < n; r++) {
    const float *x = x6 + 6 * r;
    double b1[3] = {x[0], x[2], x[4]}, a2[3] = {x[1], x[3], x[5]}, b2[3], b3[3];
    normalize3(b1);
    double d = b1[0] * a2[0] + b1[1] * a2[1] + b1[2] * a2[2];
    for (int i = 0; i < 3; i++) b2[i] = a2[i] - d * b1[i];
    normalize3(b2);
    b3[0] = b1[1] * b2[2] - b1[2] * b2[1];
    b3[1] = b1[2] * b2[0] - b1[0] * b2[2];
    b3[2] = b1[0] * b2[1] - b1[1] * b2[0];
    /* R[i][j]: column j = b(j+1) */
    double m00 = b1[0], m01 = b2[0], m02 = b3[0];
    double m10 = b1[1], m11 = b2[1], m12 = b3[1];
    double m20 = b1[2], m21 = b2[2], m22 = b3[2];
    double qa[4] = {sqrt_pos(1 + m00 + m11 + m22), sqrt_pos(1 + m00 - m11 - m22), sqrt_pos(1 - m00 + m11 - m22),
                    sqrt_pos(1 - m00 - m11 + m22)};
    int best = 0;
    for (int i = 1; i < 4; i++)
      if (qa[i] > qa[best]) best = i;
    double q[4];
    switch (best) {
      case 0: q[0] = qa[0] * qa[0]; q[1] = m21 - m12; q[2] = m02 - m20; q[3] = m10 - m01; break;
      case 1: q[0] = m21 - m12; q[1] = qa[1] * qa[1]; q[2] = m10 + m01; q[3] = m02 + m20; break;
      case 2: q[0] = m02 - m20; q[1] = m10 + m01; q[2] = qa[2] * qa[2]; q[3] = m12 + m21; break;
      default: q[0] = m10 - m01; q[1] = m20 + m02; q[2] = m21 + m12; q[3] = qa[3] * qa[3]; break;
    }
    double den = 2.0 * (qa[best] > 0.1 ? qa[best] : 0.1);
    for (int i = 0; i < 4; i++) q[i] /= den;
    if (q[0] < 0)
      for (int i = 0; i < 4; i++) q[i] = -q[i];
    double norm = sqrt_pos(q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
    double half = atan2(norm, q[0]);
    double angle = 2.0 * half;
    double ratio = fabs(angle) < 1e-6 ? 0.5 - angle * angle / 48.0 : sin(half) / angle;
    for (int i = 0; i < 3; i++) aa[3 * r + i] = (float)(q[i + 1] / ratio);
  }
}

/* ---- SMPL-X linear blend skinning -------------------------------------------------------------------------- */

void bhpe_rodrigues(const float *r, double *rot) {
  double v[3] = {(double)r[0] + 1e-8, (double)r[1] + 1e-8, (double)r[2] + 1e-8};
  double angle = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  double rx = r[0] / angle, ry = r[1] / angle, rz = r[2] / angle;
  double s = sin(angle), c1 = 1.0 - cos(angle);
  double K[9] = {0, -rz, ry, rz, 0, -rx, -ry, rx, 0};
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++) {
      double kk = 0.0;
      for (int t = 0; t < 3; t++) kk += K[3 * i + t] * K[3 * t + j];
      rot[3 * i + j] = (i == j ? 1.0 : 0.0) + s * K[3 * i + j] + c1 * kk;
    }
}

/* 4x4 row-major a x b -> c */
static void mat4_mul(const double *a, const double *b, double *c) {
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) {
      double s = 0.0;
      for (int t = 0; t < 4; t++) s += a[4 * i + t] * b[4 * t + j];
      c[4 * i + j] = s;
    }
}

int bhpe_smplx_lbs(const bhpe_smplx_t *m, const float *betas, const float *full_pose, float *verts, float *joints) {
  const int V = m->n_verts, J = m->n_joints, B = m->n_betas, P = (J - 1) * 9;
  double *vs = malloc(sizeof(double) * 3 * (size_t)V);      /* v_shaped, then v_posed */
  double *jr = malloc(sizeof(double) * 3 * (size_t)J);      /* rest joints */
  double *rot = malloc(sizeof(double) * 9 * (size_t)J);     /* per-joint rotations */
  float *pf = malloc(sizeof(float) * (size_t)(P > 0 ? P : 1)); /* pose feature */
  double *G = malloc(sizeof(double) * 16 * (size_t)J);      /* world transforms, then relative */
  float *xyz = malloc(sizeof(float) * 3 * (size_t)V);       /* shaped coordinates, one axis after another */
  if (!vs || !jr || !rot || !pf || !G || !xyz) {
    free(vs); free(jr); free(rot); free(pf); free(G); free(xyz);
    return -1;
  }
  int rc = 0;
  /* 1. shape blend shapes */
  for (size_t vk = 0; vk < 3 * (size_t)V; vk++) vs[vk] = (double)m->v_template[vk] + dot_f32(m->shapedirs + vk * B, betas, B);
  /* 2. joints of the shaped mesh: the regressor rows against the shaped x, y, z coordinates (float32 copies,
   * contiguous, for the vector dot product) */
  for (int k = 0; k < 3; k++)
    for (int v = 0; v < V; v++) xyz[(size_t)k * V + v] = (float)vs[3 * v + k];
  for (int j = 0; j < J; j++)
    for (int k = 0; k < 3; k++) jr[3 * j + k] = dot_f32(m->j_regressor + (size_t)j * V, xyz + (size_t)k * V, V);
  /* 3. pose blend shapes: (R_j - I) of joints 1.., flattened row-major */
  for (int j = 0; j < J; j++) bhpe_rodrigues(full_pose + 3 * j, rot + 9 * j);
  for (int j = 1; j < J; j++)
    for (int e = 0; e < 9; e++) pf[(j - 1) * 9 + e] = (float)(rot[9 * j + e] - ((e % 4) == 0 ? 1.0 : 0.0));
  for (size_t vk = 0; vk < 3 * (size_t)V; vk++) vs[vk] += dot_f32(m->posedirs + vk * P, pf, P);
  /* 4. the kinematic chain */
  for (int j = 0; j < J; j++) {
    int par = m->parents[j];
    double T[16] = {0};
    for (int i = 0; i < 3; i++) {
      for (int k = 0; k < 3; k++) T[4 * i + k] = rot[9 * j + 3 * i + k];
      T[4 * i + 3] = j == 0 ? jr[i] : jr[3 * j + i] - jr[3 * par + i];
    }
    T[15] = 1.0;
    if (j == 0) {
      for (int e = 0; e < 16; e++) G[e] = T[e];
    } else {
      if (par < 0 || par >= j) { rc = -2; goto done; }
      mat4_mul(G + 16 * par, T, G + 16 * j);
    }
  }
  for (int j = 0; j < J; j++) {
    double *g = G + 16 * j;
    for (int i = 0; i < 3; i++) joints[3 * j + i] = (float)g[4 * i + 3];
    for (int i = 0; i < 3; i++)  /* relative transform: translation minus R_world * rest joint */
      g[4 * i + 3] -= g[4 * i] * jr[3 * j] + g[4 * i + 1] * jr[3 * j + 1] + g[4 * i + 2] * jr[3 * j + 2];
  }
  /* 5. skinning */
  for (int v = 0; v < V; v++) {
    double T[12] = {0};
    const float *wv = m->weights + (size_t)v * J;
    for (int j = 0; j < J; j++) {
      double wj = wv[j];
      if (wj == 0.0) continue; /* exact: a zero weight adds 0 * T_j */
      for (int e = 0; e < 12; e++) T[e] += wj * G[16 * j + e];
    }
    for (int i = 0; i < 3; i++)
      verts[3 * v + i] = (float)(T[4 * i] * vs[3 * v] + T[4 * i + 1] * vs[3 * v + 1] + T[4 * i + 2] * vs[3 * v + 2] +
                                 T[4 * i + 3]);
  }
done:
  free(vs); free(jr); free(rot); free(pf); free(G); free(xyz);
  return rc;
}
