//! `--check` (CI): every measured figure printed to standard error, nothing written; the
//! verdict is whether everything ran and matched.

use crate::measure::Measured;
use crate::report::ratio;

/// Print the figures of `measured`; true when every kernel and model ran and every variant,
/// model and the f32 baseline matched its reference.
pub fn report(measured: &Measured) -> bool {
    let mut ok = true;
    for cr in &measured.results {
        if let Some(e) = &cr.error {
            eprintln!("bench: {}: {e}", cr.core.name);
            ok = false;
        }
        for r in &cr.rows {
            if r.untimed {
                eprintln!(
                    "bench: {} {} {} {}: {} MACs checked{}",
                    cr.core.name,
                    r.kernel,
                    r.shape,
                    r.variant,
                    r.macs,
                    if r.matched { "" } else { "  MISMATCH" }
                );
                ok &= r.matched;
                continue;
            }
            eprintln!(
                "bench: {} {} {} {}: {} instructions{}{}",
                cr.core.name,
                r.kernel,
                r.shape,
                r.variant,
                r.insns,
                ratio(r.insns, r.macs).map_or(String::new(), |v| format!(", {v:.2}/MAC")),
                if r.matched { "" } else { "  MISMATCH" }
            );
            ok &= r.matched;
        }
        for m in &cr.models {
            if let Some(why) = &m.skipped {
                eprintln!("bench: {} {}: not run: {why}", cr.core.name, m.model);
                ok = false;
            }
            for r in m.rows.iter().filter(|r| r.kernel.starts_with("model:")) {
                eprintln!(
                    "bench: {} {} {}: {} instructions, stack {} B{}",
                    cr.core.name,
                    r.kernel,
                    r.shape,
                    r.insns,
                    r.stack.unwrap_or(0),
                    if r.matched { "" } else { "  MISMATCH (host)" }
                );
                ok &= r.matched;
            }
            ok &= m.rows.iter().all(|r| r.matched);
        }
    }
    if let Some(f) = &measured.f32_vit {
        eprintln!(
            "bench: m4 vit-mnist f32 baseline: {} instructions, {} est. cycles{}",
            f.instructions,
            f.est_cycles,
            if f.matched {
                ""
            } else {
                "  MISMATCH (f32 reference)"
            }
        );
        ok &= f.matched;
    }
    ok
}
