//! DWT cycle counter (Cortex-M3 and up, real silicon; it reads 0 under QEMU).

use cortex_m::peripheral::{DCB, DWT};

use crate::Clock;

/// CYCCNT extended to 64 bits in software: correct as long as [`Clock::now`] is called at least
/// once per 2^32 cycles (43 s at 100 MHz; the runners read it per inference and per token).
pub struct DwtCycles {
    _dwt: DWT,
    last: u32,
    high: u64,
}

impl DwtCycles {
    /// Enable tracing and the cycle counter.
    pub fn new(dcb: &mut DCB, mut dwt: DWT) -> Self {
        dcb.enable_trace();
        DWT::unlock();
        dwt.enable_cycle_counter();
        DwtCycles {
            _dwt: dwt,
            last: DWT::cycle_count(),
            high: 0,
        }
    }
}

impl Clock for DwtCycles {
    fn now(&mut self) -> u64 {
        let c = DWT::cycle_count();
        if c < self.last {
            self.high += 1 << 32;
        }
        self.last = c;
        self.high | c as u64
    }
    fn unit(&self) -> &'static str {
        "cycles"
    }
}
