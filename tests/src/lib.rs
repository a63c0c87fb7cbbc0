//! Workspace-level end-to-end tests live in `tests/tests/`; this library holds what they share.

#![warn(missing_docs)]

use std::ffi::OsStr;

/// What to do with the firmware comparisons, from the values of `SKIP_QEMU` and `CI`.
///
/// - neither set, or only `CI`: run them (`Ok(false)`);
/// - `SKIP_QEMU` set outside CI: skip them, loudly (`Ok(true)`);
/// - `SKIP_QEMU` set while `CI` is set (to anything but `""`, `0` or `false`): an error — a CI
///   run must not turn the device comparisons into `ok` with the reason hidden on stderr.
pub fn qemu_skip_decision(skip_qemu: Option<&OsStr>, ci: Option<&OsStr>) -> Result<bool, String> {
    let ci_set = ci.is_some_and(|v| {
        let v = v.to_string_lossy();
        let v = v.trim();
        !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false"))
    });
    match (skip_qemu.is_some(), ci_set) {
        (false, _) => Ok(false),
        (true, false) => Ok(true),
        (true, true) => Err(format!(
            "SKIP_QEMU is set while CI={} is set: the firmware comparisons may not be skipped in CI \
             (unset SKIP_QEMU, or install qemu-system-arm and the thumb targets)",
            ci.map(|v| v.to_string_lossy().into_owned())
                .unwrap_or_default()
        )),
    }
}

/// `true` when the firmware comparison named `what` is to be skipped (`SKIP_QEMU` set outside
/// CI; the skip is printed on stderr). Panics — failing the calling test — when `SKIP_QEMU` is
/// set while `CI` is set.
pub fn skip_qemu(what: &str) -> bool {
    match qemu_skip_decision(
        std::env::var_os("SKIP_QEMU").as_deref(),
        std::env::var_os("CI").as_deref(),
    ) {
        Ok(false) => false,
        Ok(true) => {
            eprintln!("SKIP_QEMU set: firmware comparison NOT run ({what})");
            true
        }
        Err(e) => panic!("{what}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::qemu_skip_decision;
    use std::ffi::OsStr;

    /// Issue #17 item 2: `SKIP_QEMU` with `CI` set is refused.
    ///
    /// Injected: `qemu_skip_decision` ignoring `CI` (`(true, _) => Ok(true)`) → fails with
    /// `SKIP_QEMU with CI=1 must be refused, got Ok(true)`.
    #[test]
    fn skip_qemu_is_refused_in_ci() {
        let s = Some(OsStr::new("1"));
        for ci in ["1", "true", "yes", "TRUE"] {
            let got = qemu_skip_decision(s, Some(OsStr::new(ci)));
            assert!(
                got.as_ref().is_err_and(|e| e.contains("CI")),
                "SKIP_QEMU with CI={ci} must be refused, got {got:?}"
            );
        }
        // Outside CI the skip is honoured; without SKIP_QEMU nothing is skipped.
        for ci in [None, Some(""), Some("0"), Some("false")] {
            let ci = ci.map(OsStr::new);
            assert_eq!(qemu_skip_decision(s, ci), Ok(true), "CI={ci:?}");
            assert_eq!(qemu_skip_decision(None, ci), Ok(false), "CI={ci:?}");
        }
        assert_eq!(qemu_skip_decision(None, Some(OsStr::new("1"))), Ok(false));
    }
}
