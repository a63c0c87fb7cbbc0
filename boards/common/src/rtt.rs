//! Result lines over defmt (real boards): a [`core::fmt::Write`] that collects a line and
//! logs it with `defmt::println!("{=str}")` at each newline (long lines go out in pieces).

use core::fmt::{self, Write};

/// Line-buffered defmt output.
#[derive(Default)]
pub struct DefmtLines {
    line: heapless::String<192>,
}

impl DefmtLines {
    /// Empty buffer.
    pub const fn new() -> Self {
        DefmtLines {
            line: heapless::String::new(),
        }
    }

    fn flush(&mut self) {
        defmt::println!("{=str}", self.line.as_str());
        self.line.clear();
    }
}

impl Write for DefmtLines {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if c == '\n' {
                self.flush();
            } else if self.line.push(c).is_err() {
                self.flush();
                let _ = self.line.push(c);
            }
        }
        Ok(())
    }
}
