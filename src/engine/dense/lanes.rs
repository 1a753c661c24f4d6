//! `F4`: four f32 lanes, the unit the dense kernel computes in.
//!
//! In the browser build (`wasm32` with `+simd128`) it is a `v128` and every method is one wasm
//! SIMD instruction (shuffles for the 4 × 4 transpose). Natively it is a plain `[f32; 4]` with
//! the same arithmetic, in the same order, so `cargo test` exercises the kernel the browser runs
//! (the compiler vectorises the array form for the host). Multiply and add stay two roundings in
//! both forms, unless the wasm build enables `relaxed-simd` (see [`F4::mul_add`]).

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod imp {
    use core::arch::wasm32::*;

    /// Four f32 lanes in one wasm SIMD register.
    #[derive(Clone, Copy, Debug)]
    pub struct F4(v128);

    impl F4 {
        /// All lanes zero.
        #[inline(always)]
        pub fn zero() -> F4 {
            F4(f32x4_splat(0.0))
        }

        /// All lanes `v`.
        #[inline(always)]
        pub fn splat(v: f32) -> F4 {
            F4(f32x4_splat(v))
        }

        /// The lanes `a`.
        #[inline(always)]
        pub fn from_array(a: [f32; 4]) -> F4 {
            F4(f32x4(a[0], a[1], a[2], a[3]))
        }

        /// The lanes as an array.
        #[inline(always)]
        #[cfg_attr(not(test), allow(dead_code, reason = "for tests and debugging"))]
        pub fn to_array(self) -> [f32; 4] {
            [
                f32x4_extract_lane::<0>(self.0),
                f32x4_extract_lane::<1>(self.0),
                f32x4_extract_lane::<2>(self.0),
                f32x4_extract_lane::<3>(self.0),
            ]
        }

        /// `self * b + c`, lane-wise (two roundings).
        #[cfg(not(target_feature = "relaxed-simd"))]
        #[inline(always)]
        pub fn mul_add(self, b: F4, c: F4) -> F4 {
            F4(f32x4_add(f32x4_mul(self.0, b.0), c.0))
        }

        /// `self * b + c`, lane-wise, as relaxed SIMD's `f32x4.relaxed_madd`: one fused
        /// instruction (one rounding) where the CPU has FMA, else the two-rounding pair. Only
        /// in builds with `+relaxed-simd`, which browsers without relaxed SIMD cannot load: the
        /// small engine's relaxed compilation (scripts/engine-builds.sh), which the worker
        /// loads only where the browser validates relaxed SIMD (worker/engine.js).
        #[cfg(target_feature = "relaxed-simd")]
        #[inline(always)]
        pub fn mul_add(self, b: F4, c: F4) -> F4 {
            F4(f32x4_relaxed_madd(self.0, b.0, c.0))
        }

        /// `self - b`, lane-wise.
        #[inline(always)]
        pub fn sub(self, b: F4) -> F4 {
            F4(f32x4_sub(self.0, b.0))
        }

        /// `max(self, 0)` lane-wise (ONNX `Relu`).
        #[inline(always)]
        pub fn relu(self) -> F4 {
            F4(f32x4_pmax(f32x4_splat(0.0), self.0))
        }

        /// The sum of the four lanes, as `(l0 + l2) + (l1 + l3)`.
        #[inline(always)]
        pub fn sum(self) -> f32 {
            let v = self.0;
            let pairs = f32x4_add(v, i32x4_shuffle::<2, 3, 0, 1>(v, v));
            f32x4_extract_lane::<0>(pairs) + f32x4_extract_lane::<1>(pairs)
        }
    }

    /// The 4 × 4 transpose: lane `l` of vector `i` becomes lane `i` of vector `l` (eight
    /// two-input shuffles, which V8 emits as unpack and move-half instructions).
    #[inline(always)]
    pub fn transpose([a, b, c, d]: [F4; 4]) -> [F4; 4] {
        let lo_ab = i32x4_shuffle::<0, 4, 1, 5>(a.0, b.0);
        let hi_ab = i32x4_shuffle::<2, 6, 3, 7>(a.0, b.0);
        let lo_cd = i32x4_shuffle::<0, 4, 1, 5>(c.0, d.0);
        let hi_cd = i32x4_shuffle::<2, 6, 3, 7>(c.0, d.0);
        [
            F4(i32x4_shuffle::<0, 1, 4, 5>(lo_ab, lo_cd)),
            F4(i32x4_shuffle::<2, 3, 6, 7>(lo_ab, lo_cd)),
            F4(i32x4_shuffle::<0, 1, 4, 5>(hi_ab, hi_cd)),
            F4(i32x4_shuffle::<2, 3, 6, 7>(hi_ab, hi_cd)),
        ]
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod imp {
    /// Four f32 lanes as a plain array (the portable form of the wasm `v128`).
    #[derive(Clone, Copy, Debug)]
    pub struct F4([f32; 4]);

    impl F4 {
        /// All lanes zero.
        #[inline(always)]
        pub fn zero() -> F4 {
            F4([0.0; 4])
        }

        /// All lanes `v`.
        #[inline(always)]
        pub fn splat(v: f32) -> F4 {
            F4([v; 4])
        }

        /// The lanes `a`.
        #[inline(always)]
        pub fn from_array(a: [f32; 4]) -> F4 {
            F4(a)
        }

        /// The lanes as an array.
        #[inline(always)]
        #[cfg_attr(not(test), allow(dead_code, reason = "for tests and debugging"))]
        pub fn to_array(self) -> [f32; 4] {
            self.0
        }

        /// `self * b + c`, lane-wise (two roundings).
        #[inline(always)]
        pub fn mul_add(self, b: F4, c: F4) -> F4 {
            F4(std::array::from_fn(|i| self.0[i] * b.0[i] + c.0[i]))
        }

        /// `self - b`, lane-wise.
        #[inline(always)]
        pub fn sub(self, b: F4) -> F4 {
            F4(std::array::from_fn(|i| self.0[i] - b.0[i]))
        }

        /// `max(self, 0)` lane-wise (ONNX `Relu`), with wasm `pmax` semantics: NaN gives 0.
        #[inline(always)]
        pub fn relu(self) -> F4 {
            F4(self.0.map(|v| if 0.0 < v { v } else { 0.0 }))
        }

        /// The sum of the four lanes, as `(l0 + l2) + (l1 + l3)`.
        #[inline(always)]
        pub fn sum(self) -> f32 {
            let v = self.0;
            (v[0] + v[2]) + (v[1] + v[3])
        }
    }

    /// The 4 × 4 transpose: lane `l` of vector `i` becomes lane `i` of vector `l`.
    #[inline(always)]
    pub fn transpose(rows: [F4; 4]) -> [F4; 4] {
        std::array::from_fn(|l| F4(rows.map(|v| v.0[l])))
    }
}

pub use imp::{transpose, F4};

/// `values` four to a vector, the last one padded with zeros: `ceil(len / 4)` vectors.
pub fn pack(values: &[f32]) -> impl Iterator<Item = F4> + '_ {
    values
        .chunks(4)
        .map(|c| F4::from_array(std::array::from_fn(|l| c.get(l).copied().unwrap_or(0.0))))
}

#[cfg(test)]
mod tests {
    use super::F4;

    #[test]
    fn lane_arithmetic() {
        let a = F4::from_array([1.0, -2.0, 3.0, -4.0]);
        let b = F4::from_array([0.5, 0.5, 2.0, 2.0]);
        assert_eq!(a.mul_add(b, F4::splat(1.0)).to_array(), [1.5, 0.0, 7.0, -7.0]);
        assert_eq!(a.sub(b).to_array(), [0.5, -2.5, 1.0, -6.0]);
        assert_eq!(a.relu().to_array(), [1.0, 0.0, 3.0, 0.0]);
        assert_eq!(F4::splat(f32::NAN).relu().to_array(), [0.0; 4]);
        assert_eq!(a.sum(), -2.0);
        let rows = [a, b, F4::splat(7.0), F4::from_array([9.0, 8.0, 6.0, 5.0])];
        assert_eq!(
            super::transpose(rows).map(F4::to_array),
            [
                [1.0, 0.5, 7.0, 9.0],
                [-2.0, 0.5, 7.0, 8.0],
                [3.0, 2.0, 7.0, 6.0],
                [-4.0, 2.0, 7.0, 5.0]
            ]
        );
        assert_eq!(F4::zero().to_array(), [0.0; 4]);
    }

    #[test]
    fn pack_pads_with_zeros() {
        let packed: Vec<[f32; 4]> =
            super::pack(&[1.0, 2.0, 3.0, 4.0, 5.0]).map(F4::to_array).collect();
        assert_eq!(packed, [[1.0, 2.0, 3.0, 4.0], [5.0, 0.0, 0.0, 0.0]]);
    }
}
