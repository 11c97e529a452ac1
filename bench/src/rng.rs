//! A tiny deterministic generator (splitmix64): the data set is a pure
//! function of the seed and the row number, so the measurements can name
//! existing request ids without keeping 10 million of them in memory.

pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The `n`-th value of stream `stream`.
pub fn at(stream: u64, n: u64) -> u64 {
    mix(stream.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ mix(n))
}

/// A uniform value in `0..bound` (bound > 0).
pub fn below(stream: u64, n: u64, bound: u64) -> u64 {
    at(stream, n) % bound.max(1)
}

/// A value in [0, 1).
pub fn unit(stream: u64, n: u64) -> f64 {
    (at(stream, n) >> 11) as f64 / (1_u64 << 53) as f64
}

/// A seed that differs between runs (names of temporary databases).
pub fn seed_from_time() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    mix(nanos ^ u64::from(std::process::id()))
}
