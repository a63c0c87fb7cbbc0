//! The CMSDK APB UART of the Arm MPS2/MPS3 FPGA images (and of QEMU's `mps2-*` / `mps3-*`
//! machines) as an `embedded_io::{Read, Write}` port (feature `uart`), so that the serving
//! code (`attn_link::Server`) runs over it exactly as over any HAL's serial port.
//!
//! Registers (ARM DDI0479C, and QEMU's `hw/char/cmsdk-apb-uart.c`): `DATA` 0x00, `STATE` 0x04
//! (bit 0 TX buffer full, bit 1 RX buffer full), `CTRL` 0x08 (bit 0 TX enable, bit 1 RX
//! enable), `BAUDDIV` 0x10 (at least 16). One byte of buffer each way, no FIFO: QEMU holds
//! back host input while the RX buffer is full, so polling loses nothing.
//!
//! UART0 (QEMU connects it to the first `-serial`) is at `0x4000_4000` on
//! `mps2-an385`/`an386`/`an500` ([`MPS2_UART0`]). The TrustZone machines (QEMU
//! `hw/arm/mps2-tz.c`) put their APB UARTs behind a peripheral protection controller, reachable
//! at a Non-secure alias (bit 28 clear) and a Secure one (bit 28 set). The firmware boots and
//! stays Secure and the controller's ports reset to Secure, so the drivers use the Secure
//! alias: UART0 at `0x5020_0000` on `mps2-an505` (Non-secure `0x4020_0000`; [`AN505_UART0`],
//! APB clock = the 20 MHz core clock) and at `0x5930_3000` on `mps3-an547` (Non-secure
//! `0x4930_3000`; [`AN547_UART0`], APB clock 25 MHz, core 32 MHz). (QEMU 7.2 also answers a
//! Secure access at the Non-secure alias — a build with `0x4020_0000` served as well — so
//! the alias is the architectural choice, not one a QEMU test can tell apart.)

use core::convert::Infallible;

const DATA: usize = 0x00;
const STATE: usize = 0x04;
const CTRL: usize = 0x08;
const BAUDDIV: usize = 0x10;
const TX_FULL: u32 = 1 << 0;
const RX_FULL: u32 = 1 << 1;
const TX_EN: u32 = 1 << 0;
const RX_EN: u32 = 1 << 1;

/// UART0 of `mps2-an385` / `mps2-an386` / `mps2-an500`.
pub const MPS2_UART0: usize = 0x4000_4000;

/// UART0 of `mps2-an505` (Cortex-M33, IoTKit), Secure alias (Non-secure: `0x4020_0000`).
pub const AN505_UART0: usize = 0x5020_0000;

/// UART0 of `mps3-an547` (Cortex-M55, SSE-300), Secure alias (Non-secure: `0x4930_3000`).
pub const AN547_UART0: usize = 0x5930_3000;

/// One CMSDK APB UART, polled.
pub struct CmsdkUart {
    base: usize,
}

impl CmsdkUart {
    /// Take the UART at `base` and enable it (8N1) at `pclk_hz / baud` (a divider of at least
    /// 16, as the hardware requires).
    ///
    /// # Safety
    /// `base` must be the address of a CMSDK APB UART that nothing else uses.
    pub unsafe fn new(base: usize, pclk_hz: u32, baud: u32) -> Self {
        let u = CmsdkUart { base };
        let div = (pclk_hz / baud.max(1)).max(16);
        u.write_reg(BAUDDIV, div);
        u.write_reg(CTRL, TX_EN | RX_EN);
        u
    }

    fn read_reg(&self, off: usize) -> u32 {
        // SAFETY: `base` is a CMSDK UART owned by `self` (the contract of `new`); `off` is
        // one of its word registers.
        unsafe { core::ptr::read_volatile((self.base + off) as *const u32) }
    }

    fn write_reg(&self, off: usize, v: u32) {
        // SAFETY: as in `read_reg`.
        unsafe { core::ptr::write_volatile((self.base + off) as *mut u32, v) }
    }

    fn rx_ready(&self) -> bool {
        self.read_reg(STATE) & RX_FULL != 0
    }

    fn put(&mut self, b: u8) {
        while self.read_reg(STATE) & TX_FULL != 0 {}
        self.write_reg(DATA, b as u32);
    }
}

impl embedded_io::ErrorType for CmsdkUart {
    type Error = Infallible;
}

impl embedded_io::Read for CmsdkUart {
    /// Blocks until at least one byte arrived, then takes what is there (up to `buf.len()`).
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        let mut n = 0;
        for slot in buf.iter_mut() {
            if n == 0 {
                while !self.rx_ready() {}
            } else if !self.rx_ready() {
                break;
            }
            *slot = self.read_reg(DATA) as u8;
            n += 1;
        }
        Ok(n)
    }
}

impl embedded_io::ReadReady for CmsdkUart {
    fn read_ready(&mut self) -> Result<bool, Infallible> {
        Ok(self.rx_ready())
    }
}

impl embedded_io::Write for CmsdkUart {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        for &b in buf {
            self.put(b);
        }
        Ok(buf.len())
    }

    /// Waits until the last byte left the TX buffer.
    fn flush(&mut self) -> Result<(), Infallible> {
        while self.read_reg(STATE) & TX_FULL != 0 {}
        Ok(())
    }
}
