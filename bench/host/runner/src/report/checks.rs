//! The targets of issue 6 (the "Targets" table of BENCHMARKS.md): each a figure, a limit and
//! whether the measurement meets it.

use crate::measure::{CoreResult, F32Row};
use crate::models::{cmsis_estimate, vit_parts};

/// One target of the issue: core, figure, `≤` or `≥`, limit, measured value, met.
pub struct Check {
    /// Core name.
    pub core: String,
    /// The figure.
    pub what: String,
    /// `≤` or `≥`.
    pub op: &'static str,
    /// The target.
    pub limit: f64,
    /// The measured value.
    pub value: f64,
    /// Met.
    pub ok: bool,
}

impl Check {
    /// Its row of the Targets table.
    pub fn markdown_row(&self) -> String {
        format!(
            "| {} | {} | {} {} | {:.2} | {} |\n",
            self.core,
            self.what,
            self.op,
            self.limit,
            self.value,
            if self.ok { "yes" } else { "**no**" }
        )
    }
}

fn at_most(core: &str, what: String, limit: f64, value: f64) -> Check {
    Check {
        core: core.into(),
        what,
        op: "≤",
        limit,
        value,
        ok: value <= limit,
    }
}

/// The linear shapes issue 6 sets targets for (the shipped ViT's and the digit reader's layers).
const TARGET_LINEAR_SHAPES: [&str; 5] = [
    "17x64x192",
    "17x64x64",
    "17x64x128",
    "17x128x64",
    "1x64x192",
];

/// Targets from the issue, per core in `results`.
pub fn checks(results: &[CoreResult], f32_vit: Option<&F32Row>) -> Vec<Check> {
    let mut v = Vec::new();
    for cr in results {
        let opt = |kernel: &'static str| {
            cr.rows
                .iter()
                .filter(move |r| r.kernel == kernel && r.variant == "optimized")
        };
        let c = cr.core.name;
        let dsp = matches!(c, "m4" | "m7" | "m33");
        // The targets are for its shapes; the other linear rows (char-lm, patch
        // embedding) are in the kernel tables without a target.
        for r in opt("linear").filter(|r| TARGET_LINEAR_SHAPES.contains(&r.shape.as_str())) {
            let ipm = r.insns as f64 / r.macs as f64;
            let cpm = r.cycles as f64 / r.macs as f64;
            if dsp {
                v.push(at_most(
                    c,
                    format!("linear {} instr/MAC", r.shape),
                    1.3,
                    ipm,
                ));
                v.push(at_most(
                    c,
                    format!("linear {} est. cycles/MAC", r.shape),
                    1.6,
                    cpm,
                ));
            } else if c == "m0" {
                v.push(at_most(
                    c,
                    format!("linear {} instr/MAC", r.shape),
                    5.0,
                    ipm,
                ));
            } else if c == "m55" {
                v.push(at_most(
                    c,
                    format!("linear {} instr/MAC", r.shape),
                    0.35,
                    ipm,
                ));
            }
        }
        if c == "m4" {
            for r in opt("attention") {
                v.push(at_most(
                    c,
                    format!("attention {} instructions", r.shape),
                    200_000.0,
                    r.insns as f64,
                ));
            }
            for k in ["softmax_scores", "softmax_i8"] {
                for r in opt(k) {
                    let ipe = r.insns as f64 / r.elems as f64;
                    v.push(at_most(
                        c,
                        format!("{k} row of {} instr/element", r.shape),
                        30.0,
                        ipe,
                    ));
                }
            }
            if let Some(e) = cmsis_estimate(cr) {
                let ratio = e.est_230 / e.ours as f64;
                v.push(Check {
                    core: c.into(),
                    what: "whole ViT: CMSIS-NN estimate (2.30 instr/MAC) ÷ ours, instructions"
                        .into(),
                    op: "≥",
                    limit: 2.0,
                    value: ratio,
                    ok: ratio >= 2.0,
                });
            }
            let ours = vit_parts(cr).and_then(|r| {
                r.iter()
                    .find(|r| r.kernel == "model:vit-mnist" && r.shape == "image")
            });
            if let (Some(f), Some(o)) = (f32_vit, ours) {
                let x = f.est_cycles as f64 / o.cycles as f64;
                v.push(Check {
                    core: c.into(),
                    what: "whole ViT: f32 baseline est. cycles ÷ int8 est. cycles".into(),
                    op: "≥",
                    limit: f.target,
                    value: x,
                    ok: x >= f.target,
                });
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cores;
    use crate::report::tests::row;

    fn core_with(name: &str, rows: Vec<crate::parse::Row>) -> CoreResult {
        CoreResult {
            core: cores::by_name(name).unwrap(),
            rows,
            error: None,
            models: Vec::new(),
        }
    }

    /// The DSP cores' linear targets (≤ 1.3 instr/MAC, ≤ 1.6 est. cycles/MAC) at the issue's
    /// shapes only: a value at the limit meets it, one above does not; a shape without a
    /// target and a non-optimized variant give no check; the M0 and M55 limits are their own.
    /// Catches `<` for `≤`, targets applied to every linear row, or the M55 held to the DSP
    /// limit.
    #[test]
    fn linear_targets() {
        let m7 = core_with(
            "m7",
            vec![
                row("linear", "17x64x192", "optimized", 1300, 1000, 1700),
                row("linear", "1x96x288", "optimized", 5000, 1000, 5000),
                row("linear", "17x64x64", "generic", 5000, 1000, 5000),
            ],
        );
        let m55 = core_with(
            "m55",
            vec![row("linear", "1x64x192", "optimized", 350, 1000, 2000)],
        );
        let m0 = core_with(
            "m0",
            vec![row("linear", "17x128x64", "optimized", 5001, 1000, 9000)],
        );
        let got: Vec<String> = checks(&[m7, m55, m0], None)
            .iter()
            .map(Check::markdown_row)
            .collect();
        assert_eq!(
            got,
            [
                "| m7 | linear 17x64x192 instr/MAC | ≤ 1.3 | 1.30 | yes |\n",
                "| m7 | linear 17x64x192 est. cycles/MAC | ≤ 1.6 | 1.70 | **no** |\n",
                "| m55 | linear 1x64x192 instr/MAC | ≤ 0.35 | 0.35 | yes |\n",
                "| m0 | linear 17x128x64 instr/MAC | ≤ 5 | 5.00 | **no** |\n",
            ]
        );
    }
}
