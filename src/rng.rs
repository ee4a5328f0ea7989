//! A small deterministic generator (xorshift64*) for the demo and synthetic data sets: the
//! same seed gives the same company on every machine.

use chrono::Duration;

pub struct Rng(pub u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // xorshift must not start at zero.
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    /// A random span between `min_hours` and `max_hours`, to the minute.
    pub fn minutes(&mut self, min_hours: i64, max_hours: i64) -> Duration {
        let span = ((max_hours - min_hours) * 60).max(1) as u64;
        Duration::minutes(min_hours * 60 + self.below(span) as i64)
    }
}
