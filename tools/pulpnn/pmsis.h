/* jaxbp's stand-in for the PULP SDK's pmsis.h: lets the PULP-NN / PULP-NN-mixed (XpulpV2) kernel sources compile
 * with gcc on a host, single core. The Xpulp builtins they use are plain C here, with the semantics of the
 * RI5CY/CV32E40P ISA manual (SIMD lanes little-endian, lane 0 in the low byte):
 *   p.extract / p.extractu / p.insert (bit fields), p.clip / p.clipu (clip_r: [-(b+1), b], clipu_r: [0, b]),
 *   p.fl1 (index of the highest set bit), pv.sdotsp / pv.sdotusp (dot products of 4 x 8-bit, 8 x 4-bit and
 *   16 x 2-bit lanes added to an int32), pv.pack, pv.shuffle, pv.max/min/avg, p.max/p.min.
 * One core: pi_core_id() = 0, NUM_CORES = 1, barriers are no-ops.
 */
#ifndef JAXBP_PMSIS_SHIM_H
#define JAXBP_PMSIS_SHIM_H

#include <stdint.h>
#include <stddef.h>
#include <stdio.h>

#ifndef NUM_CORES
#define NUM_CORES 1
#endif

typedef int8_t v4s __attribute__((vector_size(4)));
typedef uint8_t v4u __attribute__((vector_size(4)));
typedef int16_t v2s __attribute__((vector_size(4)));
typedef uint16_t v2u __attribute__((vector_size(4)));

static inline int pi_core_id(void) { return 0; }
static inline void pi_cl_team_barrier(int id) { (void)id; }

static inline uint32_t jx_u32(v4s v) { uint32_t r; __builtin_memcpy(&r, &v, 4); return r; }
static inline uint32_t jx_u32u(v4u v) { uint32_t r; __builtin_memcpy(&r, &v, 4); return r; }
static inline v4s jx_v4s(uint32_t r) { v4s v; __builtin_memcpy(&v, &r, 4); return v; }
static inline v4u jx_v4u(uint32_t r) { v4u v; __builtin_memcpy(&v, &r, 4); return v; }

/* Bit fields: `size` bits at `off`. */
static inline int32_t jx_bextract(int32_t x, int size, int off) {
  uint32_t u = ((uint32_t)x >> off) & (size >= 32 ? 0xffffffffu : ((1u << size) - 1u));
  return (size < 32 && (u >> (size - 1)) & 1u) ? (int32_t)(u | ~((1u << size) - 1u)) : (int32_t)u;
}
static inline uint32_t jx_bextractu(uint32_t x, int size, int off) {
  return (x >> off) & (size >= 32 ? 0xffffffffu : ((1u << size) - 1u));
}
static inline int32_t jx_binsert(int32_t dst, int32_t not_mask, int32_t src, int32_t mask, int off) {
  return (int32_t)(((uint32_t)dst & (uint32_t)not_mask) | (((uint32_t)src << off) & (uint32_t)mask));
}
#define __builtin_pulp_bextract(x, size, off) jx_bextract((int32_t)(x), (size), (off))
#define __builtin_pulp_bextractu(x, size, off) jx_bextractu((uint32_t)(x), (size), (off))
#define __builtin_pulp_binsert(dst, nm, src, m, off) jx_binsert((int32_t)(dst), (int32_t)(nm), (int32_t)(src), (int32_t)(m), (off))

/* Clips. */
static inline int32_t jx_clip(int32_t x, int32_t lo, int32_t hi) { return x < lo ? lo : (x > hi ? hi : x); }
#define __builtin_pulp_clip_r(x, b) jx_clip((int32_t)(x), -(int32_t)(b) - 1, (int32_t)(b))
#define __builtin_pulp_clipu_r(x, b) jx_clip((int32_t)(x), 0, (int32_t)(b))
#define __builtin_pulp_clip(x, lo, hi) jx_clip((int32_t)(x), (int32_t)(lo), (int32_t)(hi))
#define __builtin_pulp_clipu(x, lo, hi) jx_clip((int32_t)(x), (int32_t)(lo), (int32_t)(hi))

static inline int32_t jx_fl1(uint32_t x) { return x ? 31 - __builtin_clz(x) : 32; }
#define __builtin_pulp_fl1(x) jx_fl1((uint32_t)(x))

#define __builtin_pulp_maxsi(a, b) ((int32_t)(a) > (int32_t)(b) ? (int32_t)(a) : (int32_t)(b))
#define __builtin_pulp_minsi(a, b) ((int32_t)(a) < (int32_t)(b) ? (int32_t)(a) : (int32_t)(b))
#define __builtin_pulp_maxusi(a, b) ((uint32_t)(a) > (uint32_t)(b) ? (uint32_t)(a) : (uint32_t)(b))
#define __builtin_pulp_minusi(a, b) ((uint32_t)(a) < (uint32_t)(b) ? (uint32_t)(a) : (uint32_t)(b))

/* SIMD lanes of `w` bits (8, 4, 2) in a 32-bit word. */
static inline int32_t jx_lane(uint32_t v, int i, int w, int sgn) {
  return sgn ? jx_bextract((int32_t)v, w, i * w) : (int32_t)jx_bextractu(v, w, i * w);
}
static inline int32_t jx_dot(uint32_t a, int sa, uint32_t b, int sb, int w, int32_t c) {
  int i;
  for (i = 0; i < 32 / w; i++) c += jx_lane(a, i, w, sa) * jx_lane(b, i, w, sb);
  return c;
}
static inline uint32_t jx_lanewise(uint32_t a, uint32_t b, int w, int sgn, int op) {
  uint32_t r = 0, m = (w == 32) ? 0xffffffffu : ((1u << w) - 1u);
  int i;
  for (i = 0; i < 32 / w; i++) {
    int32_t x = jx_lane(a, i, w, sgn), y = jx_lane(b, i, w, sgn), z;
    z = op == 0 ? (x > y ? x : y) : op == 1 ? (x < y ? x : y) : ((x + y) >> 1);
    r |= ((uint32_t)z & m) << (i * w);
  }
  return r;
}
#define JX_DOT(a, sa, b, sb, w, c) jx_dot(jx_u32((v4s)(a)), (sa), jx_u32((v4s)(b)), (sb), (w), (int32_t)(c))
#define __builtin_pulp_sdotsp4(a, b, c) JX_DOT(a, 1, b, 1, 8, c)
#define __builtin_pulp_sdotusp4(a, b, c) JX_DOT(a, 0, b, 1, 8, c)
#define __builtin_pulp_sdotup4(a, b, c) JX_DOT(a, 0, b, 0, 8, c)
#define __builtin_pulp_dotsp4(a, b) JX_DOT(a, 1, b, 1, 8, 0)
#define __builtin_pulp_dotusp4(a, b) JX_DOT(a, 0, b, 1, 8, 0)
#define __builtin_pulp_dotup4(a, b) JX_DOT(a, 0, b, 0, 8, 0)
#define __builtin_pulp_sdotsp8(a, b, c) JX_DOT(a, 1, b, 1, 4, c)
#define __builtin_pulp_sdotusp8(a, b, c) JX_DOT(a, 0, b, 1, 4, c)
#define __builtin_pulp_sdotsp16(a, b, c) JX_DOT(a, 1, b, 1, 2, c)
#define __builtin_pulp_sdotusp16(a, b, c) JX_DOT(a, 0, b, 1, 2, c)
#define __builtin_pulp_sdotsp2(a, b, c) jx_dot(jx_u32((v4s)(a)), 1, jx_u32((v4s)(b)), 1, 16, (int32_t)(c))
#define __builtin_pulp_dotsp2(a, b) jx_dot(jx_u32((v4s)(a)), 1, jx_u32((v4s)(b)), 1, 16, 0)

#define JX_LW(a, b, w, sgn, op) jx_v4s(jx_lanewise(jx_u32((v4s)(a)), jx_u32((v4s)(b)), (w), (sgn), (op)))
#define JX_LWU(a, b, w, op) jx_v4u(jx_lanewise(jx_u32((v4s)(a)), jx_u32((v4s)(b)), (w), 0, (op)))
/* 4- and 2-bit lanes (XpulpNN ops; the headers apply them to whole int32/uint32 words). */
#define JX_LWI(a, b, w, sgn, op) ((int32_t)jx_lanewise((uint32_t)(a), (uint32_t)(b), (w), (sgn), (op)))
#define __builtin_pulp_max4(a, b) JX_LW(a, b, 8, 1, 0)
#define __builtin_pulp_maxu4(a, b) JX_LWU(a, b, 8, 0)
#define __builtin_pulp_min4(a, b) JX_LW(a, b, 8, 1, 1)
#define __builtin_pulp_minu4(a, b) JX_LWU(a, b, 8, 1)
#define __builtin_pulp_avg4(a, b) JX_LW(a, b, 8, 1, 2)
#define __builtin_pulp_avgu4(a, b) JX_LWU(a, b, 8, 2)
#define __builtin_pulp_max8(a, b) JX_LWI(a, b, 4, 1, 0)
#define __builtin_pulp_maxu8(a, b) JX_LWI(a, b, 4, 0, 0)
#define __builtin_pulp_min8(a, b) JX_LWI(a, b, 4, 1, 1)
#define __builtin_pulp_minu8(a, b) JX_LWI(a, b, 4, 0, 1)
#define __builtin_pulp_avgu8(a, b) JX_LWI(a, b, 4, 0, 2)
#define __builtin_pulp_max16(a, b) JX_LWI(a, b, 2, 1, 0)
#define __builtin_pulp_maxu16(a, b) JX_LWI(a, b, 2, 0, 0)
#define __builtin_pulp_min16(a, b) JX_LWI(a, b, 2, 1, 1)
#define __builtin_pulp_minu16(a, b) JX_LWI(a, b, 2, 0, 1)
#define __builtin_pulp_avgu16(a, b) JX_LWI(a, b, 2, 0, 2)

static inline v4s jx_pack4(int32_t x, int32_t y, int32_t z, int32_t t) {
  return jx_v4s(((uint32_t)x & 0xffu) | (((uint32_t)y & 0xffu) << 8) | (((uint32_t)z & 0xffu) << 16) |
                (((uint32_t)t & 0xffu) << 24));
}
#define __builtin_pulp_pack4(x, y, z, t) jx_pack4((int32_t)(x), (int32_t)(y), (int32_t)(z), (int32_t)(t))

/* pv.shuffle.b: lane i of the result is lane (mask lane i & 3) of `a`. */
static inline v4s jx_shuffleb(v4s a, v4s mask) {
  uint32_t ua = jx_u32(a), um = jx_u32(mask), r = 0;
  int i;
  for (i = 0; i < 4; i++) r |= ((ua >> (8 * ((um >> (8 * i)) & 3u))) & 0xffu) << (8 * i);
  return jx_v4s(r);
}
#define __builtin_pulp_shuffleb(a, m) jx_shuffleb((v4s)(a), (v4s)(m))

#endif
