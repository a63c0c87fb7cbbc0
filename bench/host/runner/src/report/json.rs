//! `bench/results.json`: the raw figures (every kernel row with its class counts, every
//! model's displayed parts and ViT parts, the CMSIS-NN estimate and the f32 baseline).

use super::{json_num, ratio};
use crate::measure::Measured;
use crate::models::{cmsis_estimate, model_parts, CMSIS_ATTENTION};
use qemu_insn_count::timing::CLASS_NAMES;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The text of `bench/results.json`.
pub fn results_json(m: &Measured) -> String {
    let Measured {
        qemu_version,
        infos,
        results,
        f32_vit,
    } = m;
    let mut js = String::from("{\n");
    writeln!(js, "  \"qemu\": \"{}\",", qemu_version.replace('"', "'")).unwrap();
    js.push_str("  \"cycle_model\": \"cortex-m4 (bench/host/plugin/src/timing.rs)\",\n");
    js.push_str("  \"cores\": [\n");
    for (ci, cr) in results.iter().enumerate() {
        js.push_str("    {\n");
        writeln!(js, "      \"core\": \"{}\",", cr.core.name).unwrap();
        writeln!(js, "      \"machine\": \"{}\",", cr.core.machine).unwrap();
        writeln!(js, "      \"target\": \"{}\",", cr.core.target).unwrap();
        writeln!(js, "      \"rustflags\": \"{}\",", cr.core.rustflags).unwrap();
        match &cr.error {
            Some(e) => {
                writeln!(js, "      \"error\": \"{}\",", e.replace(['"', '\\'], "'")).unwrap()
            }
            None => js.push_str("      \"error\": null,\n"),
        }
        js.push_str("      \"results\": [\n");
        for (i, r) in cr.rows.iter().enumerate() {
            let mut classes = BTreeMap::new();
            for (k, name) in CLASS_NAMES.iter().enumerate() {
                classes.insert(*name, r.classes[k]);
            }
            let cls: Vec<String> = classes
                .iter()
                .map(|(k, v)| format!("\"{k}\": {v}"))
                .collect();
            writeln!(
                js,
                "        {{\"kernel\": \"{}\", \"shape\": \"{}\", \"variant\": \"{}\", \"instructions\": {}, \
                 \"est_cycles\": {}, \"macs\": {}, \"elements\": {}, \"instr_per_mac\": {}, \
                 \"cycles_per_mac\": {}, \"instr_per_element\": {}, \"taken_branches\": {}, \
                 \"classes\": {{{}}}, \"matches_generic\": {}}}{}",
                r.kernel,
                r.shape,
                r.variant,
                r.insns,
                r.cycles,
                r.macs,
                r.elems,
                json_num(ratio(r.insns, r.macs)),
                json_num(ratio(r.cycles, r.macs)),
                json_num(ratio(r.insns, r.elems)),
                r.taken,
                cls.join(", "),
                r.matched,
                if i + 1 < cr.rows.len() { "," } else { "" }
            )
            .unwrap();
        }
        js.push_str("      ],\n");
        js.push_str("      \"models\": [\n");
        for (mi, m) in cr.models.iter().enumerate() {
            let info = infos.iter().find(|i| i.name == m.model);
            write!(
                js,
                "        {{\"model\": \"{}\", \"flash_bytes\": {}, \"ram_bytes\": {}, \"not_run\": {}, \"rows\": [",
                m.model,
                info.map_or(0, |i| i.flash),
                info.map_or(0, |i| i.ram),
                m.skipped
                    .as_ref()
                    .map_or("null".into(), |w| format!("\"{}\"", w.replace(['"', '\\'], "'")))
            )
            .unwrap();
            let parts: Vec<String> = match info {
                Some(i) => model_parts(i, &m.rows)
                    .iter()
                    .map(|p| {
                        format!(
                            "{{\"what\": \"{}\", \"instructions\": {}, \"est_cycles\": {}, \"macs\": {}, \
                             \"divided_by\": {}, \"instr_per_mac\": {}, \"stack_bytes\": {}, \"matches_host\": {}}}",
                            p.label.replace("**", ""),
                            p.insns / p.div,
                            p.cycles / p.div,
                            p.macs / p.div,
                            p.div,
                            json_num(ratio(p.insns, p.macs)),
                            p.stack.map_or("null".into(), |s| s.to_string()),
                            p.matched
                        )
                    })
                    .chain(m.rows.iter().filter(|r| r.kernel == "vit-part").map(|r| {
                        format!(
                            "{{\"vit_part\": \"{}\", \"layer\": \"{}\", \"instructions\": {}, \
                             \"est_cycles\": {}, \"macs\": {}, \"matches_whole_run\": {}}}",
                            r.shape, r.variant, r.insns, r.cycles, r.macs, r.matched
                        )
                    }))
                    .collect(),
                None => Vec::new(),
            };
            write!(js, "{}", parts.join(", ")).unwrap();
            writeln!(js, "]}}{}", if mi + 1 < cr.models.len() { "," } else { "" }).unwrap();
        }
        js.push_str("      ]\n");
        writeln!(
            js,
            "    }}{}",
            if ci + 1 < results.len() { "," } else { "" }
        )
        .unwrap();
    }
    js.push_str("  ],\n");
    match results
        .iter()
        .find(|c| c.core.name == "m4")
        .and_then(cmsis_estimate)
    {
        Some(e) => writeln!(
            js,
            "  \"vit_vs_cmsis_nn_m4\": {{\"linear_macs\": {}, \"attention_layers\": {}, \
             \"attention_instructions_each\": {CMSIS_ATTENTION}, \"ours_measured_rest\": {}, \
             \"estimate_2_30\": {:.0}, \"estimate_2_66\": {:.0}, \"ours\": {}, \
             \"ratio_2_30\": {:.4}, \"ratio_2_66\": {:.4}}},",
            e.linear_macs,
            e.attention_layers,
            e.rest,
            e.est_230,
            e.est_266,
            e.ours,
            e.est_230 / e.ours as f64,
            e.est_266 / e.ours as f64
        )
        .unwrap(),
        None => js.push_str("  \"vit_vs_cmsis_nn_m4\": null,\n"),
    }
    match &f32_vit {
        Some(f) => writeln!(
            js,
            "  \"f32_vit_m4\": {{\"instructions\": {}, \"est_cycles\": {}, \"flash_bytes\": {}, \
             \"ram_static_bytes\": {}, \"stack_bytes\": {}, \"matches_reference\": {}, \
             \"max_abs_diff\": {:.6}}}",
            f.instructions, f.est_cycles, f.flash, f.ram, f.stack, f.matched, f.max_abs_diff
        )
        .unwrap(),
        None => js.push_str("  \"f32_vit_m4\": null\n"),
    }
    js.push_str("}\n");
    js
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cores;
    use crate::measure::CoreResult;
    use crate::report::tests::{class, row};

    /// results.json is valid JSON (read back with serde_json) and carries each row's counts,
    /// its classes by name and the ratios of its counts; a core that failed has its error.
    /// Catches a missing comma between rows or cores, and classes written under the wrong name.
    #[test]
    fn results_json_reads_back() {
        let a = row("linear", "17x64x192", "optimized", 650, 200, 900);
        let mut b = row("softmax_i8", "17", "optimized", 340, 0, 400);
        b.elems = 17;
        let m = Measured {
            qemu_version: "QEMU emulator version 8.2.2 (\"x\")".into(),
            infos: Vec::new(),
            results: vec![
                CoreResult {
                    core: cores::m4(),
                    rows: vec![a.clone(), b],
                    error: None,
                    models: Vec::new(),
                },
                CoreResult {
                    core: cores::by_name("m0").unwrap(),
                    rows: Vec::new(),
                    error: Some("build \"failed\"".into()),
                    models: Vec::new(),
                },
            ],
            f32_vit: None,
        };
        let js: serde_json::Value = serde_json::from_str(&results_json(&m)).unwrap();
        let cores = js["cores"].as_array().unwrap();
        assert_eq!(cores.len(), 2);
        let r = &cores[0]["results"][0];
        assert_eq!(r["instructions"], 650);
        assert_eq!(r["est_cycles"], 900);
        assert_eq!(r["instr_per_mac"].as_f64(), Some(650.0 / 200.0));
        assert_eq!(r["cycles_per_mac"].as_f64(), Some(900.0 / 200.0));
        for name in CLASS_NAMES {
            assert_eq!(r["classes"][name], class(&a.classes, name), "{name}");
        }
        let s = &cores[0]["results"][1];
        assert_eq!(s["instr_per_mac"], serde_json::Value::Null);
        assert_eq!(s["instr_per_element"].as_f64(), Some(20.0));
        assert_eq!(cores[1]["core"], "m0");
        assert_eq!(cores[1]["error"], "build 'failed'");
        assert_eq!(js["f32_vit_m4"], serde_json::Value::Null);
    }
}
