//! The command line: `[--check] [--example-size] [CORE…]`.

use crate::cores::{self, Core, CORES};

/// What to run.
pub struct Options {
    /// `--check` (CI): print, write nothing, fail unless every variant matches.
    pub check_only: bool,
    /// `--example-size`: only the device-API example's code size (its BENCHMARKS.md section).
    pub example_size_only: bool,
    /// The cores given (in the order given), else the M4 under `--check`, else every core.
    pub cores: Vec<&'static Core>,
}

/// Parse the arguments (without the program name).
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Options, String> {
    let mut check_only = false;
    let mut example_size_only = false;
    let mut names = Vec::new();
    for a in args {
        match a.as_str() {
            "--check" => check_only = true,
            "--example-size" => example_size_only = true,
            _ => names.push(a),
        }
    }
    if check_only && names.is_empty() {
        names.push("m4".into());
    }
    let cores = if names.is_empty() {
        CORES.iter().collect()
    } else {
        names
            .iter()
            .map(|a| {
                cores::by_name(a).ok_or_else(|| {
                    let known: Vec<&str> = CORES.iter().map(|c| c.name).collect();
                    format!(
                        "unknown core {a:?} (cores: {}; options: --check, --example-size)",
                        known.join(" ")
                    )
                })
            })
            .collect::<Result<_, _>>()?
    };
    Ok(Options {
        check_only,
        example_size_only,
        cores,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(args: &[&str]) -> Result<(bool, bool, Vec<&'static str>), String> {
        let o = parse(args.iter().map(|s| s.to_string()))?;
        Ok((
            o.check_only,
            o.example_size_only,
            o.cores.iter().map(|c| c.name).collect(),
        ))
    }

    /// No arguments: every core in table order; `--check` alone: the M4; cores as given, in
    /// that order, flags anywhere. Catches `--check` without cores running all five.
    #[test]
    fn selects_cores() {
        let all: Vec<&str> = CORES.iter().map(|c| c.name).collect();
        assert_eq!(names(&[]).unwrap(), (false, false, all.clone()));
        assert_eq!(names(&["--check"]).unwrap(), (true, false, vec!["m4"]));
        assert_eq!(
            names(&["m0", "--check", "m55"]).unwrap(),
            (true, false, vec!["m0", "m55"])
        );
        assert_eq!(names(&["--example-size"]).unwrap(), (false, true, all));
    }

    /// An unknown core or option is an error naming it, not a panic.
    #[test]
    fn rejects_unknown() {
        let e = names(&["m4", "m3"]).unwrap_err();
        assert!(e.contains("\"m3\"") && e.contains("m55"), "{e}");
        let e = names(&["--chek"]).unwrap_err();
        assert!(e.contains("--chek"), "{e}");
    }
}
