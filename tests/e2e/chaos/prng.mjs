// A small seeded PRNG (mulberry32) so a chaos run replays from its printed seed. Quality is
// ample for choosing fault kinds and pauses; it is not for anything cryptographic.

/** A random 32-bit seed, or the one in `CHAOS_SEED` (decimal or 0x-hex) to replay a run. */
export function chooseSeed(env = process.env.CHAOS_SEED) {
  if (env !== undefined && env !== '') {
    const seed = Number(env);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffff_ffff) {
      throw new Error(`CHAOS_SEED must be an integer in 0..2^32-1, got ${env}`);
    }
    return seed;
  }
  return Math.floor(Math.random() * 0x1_0000_0000);
}

/** A generator of floats in [0, 1) with helpers, fully determined by `seed`. */
export function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  };
  const int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)); // inclusive
  const pick = (xs) => xs[Math.floor(next() * xs.length)];
  const shuffle = (xs) => {
    const out = [...xs];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  };
  return { next, int, pick, shuffle };
}
