//! The board's [`Clock`] (shared by the model runner `main.rs` and `bin/serve.rs`).

use board_common::Clock;
use rp_pico::hal::Timer;

/// The 1 MHz RP2040 timer (64-bit, never wraps in practice) as the [`Clock`].
pub struct Micros(pub Timer);

impl Clock for Micros {
    fn now(&mut self) -> u64 {
        self.0.get_counter().ticks()
    }
    fn unit(&self) -> &'static str {
        "us"
    }
}
