/* The host part of a BinaryHPE frame, for the Zynq's ARM (and any C99 host): docs/host.md.
 *
 * Tensors are float32, channel-major (C, H, W) as PyTorch's (1, C, H, W); coordinates are normalised image units
 * in [0, 1] (pixel i of n covers [i/n, (i+1)/n]) as in train/boxnet.py. Reductions accumulate in double.
 * No allocation except bhpe_smplx_lbs's work arrays; no library beyond libc and libm. */
#ifndef BHPE_HOST_H
#define BHPE_HOST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* F.interpolate(mode="bilinear", align_corners=False, no antialias): in (c, h, w) -> out (c, oh, ow). */
void bhpe_resize_bilinear(const float *in, int c, int h, int w, float *out, int oh, int ow);

/* boxnet.soft_argmax_2d: k maps (h, w) of logits -> out (k, 2) expected (x, y). */
void bhpe_soft_argmax_2d(const float *hm, int k, int h, int w, float *out);

/* boxnet.soft_argmax_3d: joints*depth channels (channel j*depth + d) of (h, w) -> out (joints, 3) (x, y, z). */
void bhpe_soft_argmax_3d(const float *hm, int joints, int depth, int h, int w, float *out);

/* wholebody.crop_box: n boxes (cx, cy, w, h) of an img_h x img_w image widened to the crop's aspect ratio
 * (crop_h x crop_w), then both sides times scale -> out (n, 4). */
void bhpe_crop_box(const float *boxes, int n, int img_h, int img_w, int crop_h, int crop_w, float scale, float *out);

/* boxnet.roi_align: img (c, h, w) cropped at box (cx, cy, bw, bh) (sides clamped to >= min_size) and resized to
 * (oh, ow), one bilinear sample at each bin centre, zero outside -> out (c, oh, ow). */
void bhpe_roi_align(const float *img, int c, int h, int w, const float *box, int oh, int ow, float min_size,
                    float *out);

/* boxnet.sample_features: feat (c, h, w) at k points xy (k, 2) in [0, 1] -> out (k, c). */
void bhpe_sample_features(const float *feat, int c, int h, int w, const float *xy, int k, float *out);

/* nn.Linear: y (n_out) = weight (n_out, n_in) x (n_in) + bias (n_out; NULL: none). */
void bhpe_linear(const float *x, int n_in, const float *weight, const float *bias, int n_out, float *y);

/* feat.mean((2, 3)): (c, h, w) -> (c). */
void bhpe_mean_pool(const float *feat, int c, int h, int w, float *out);

/* wholebody.rot6d_to_axis_angle: n 6D rotations (n, 6) -> axis-angle (n, 3). */
void bhpe_rot6d_to_axis_angle(const float *x6, int n, float *aa);

/* Rodrigues' formula as smplx.lbs.batch_rodrigues (the angle is |r + 1e-8|): axis-angle (3) -> R (3x3, row major). */
void bhpe_rodrigues(const float *r, double *rot);

/* The SMPL-X arrays linear blend skinning reads (the official file's layouts, float32):
 * v_template (V, 3); shapedirs (V, 3, n_betas) (shape columns, then expression columns, as smplx concatenates
 * betas and expression); posedirs (V, 3, (J-1)*9); j_regressor (J, V); parents (J; parents[0] = -1);
 * weights (V, J). */
typedef struct {
  int n_verts, n_joints, n_betas;
  const float *v_template, *shapedirs, *posedirs, *j_regressor, *weights;
  const int32_t *parents;
} bhpe_smplx_t;

/* smplx.lbs.lbs: betas (n_betas), full_pose (J, 3) axis-angle (root, body, jaw, eyes, left hand, right hand as
 * smplx orders them) -> verts (V, 3), joints (J, 3) (posed joints), no translation. Returns 0, -1 when the work
 * arrays cannot be allocated, -2 on a bad parent index. */
int bhpe_smplx_lbs(const bhpe_smplx_t *m, const float *betas, const float *full_pose, float *verts, float *joints);

#ifdef __cplusplus
}
#endif
#endif
