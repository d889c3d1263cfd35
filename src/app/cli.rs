//! The command line both binaries share: their configuration comes from the environment, so
//! an argument is `--help`, `--version`, one of the binary's own flags, or a mistake.

use std::process::ExitCode;

/// What the first command-line argument asks for.
#[derive(Debug, PartialEq)]
pub enum Invocation {
    /// No argument: run as configured by the environment.
    Run,
    /// One of the binary's own flags (as listed by the caller).
    Flag(&'static str),
    /// Answered here (help, version, or an unknown argument): exit with this code.
    Exit(ExitCode),
}

/// Reads `arg` (the first argument, if any) for the binary `program`: prints `help` for
/// `-h`/`--help`, the version for `-V`/`--version`, returns any of `flags` for the caller to
/// act on, and refuses anything else with exit code 2.
pub fn invocation(program: &str, help: &str, flags: &[&'static str], arg: Option<&str>) -> Invocation {
    match arg {
        None => Invocation::Run,
        Some("-h" | "--help") => {
            print!("{help}");
            Invocation::Exit(ExitCode::SUCCESS)
        }
        Some("-V" | "--version") => {
            println!("{program} {}", env!("CARGO_PKG_VERSION"));
            Invocation::Exit(ExitCode::SUCCESS)
        }
        Some(other) => match flags.iter().find(|&&f| f == other) {
            Some(&flag) => Invocation::Flag(flag),
            None => {
                eprintln!("{program}: unknown argument {other:?}; see --help");
                Invocation::Exit(ExitCode::from(2))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_map_to_what_they_ask_for() {
        let ask = |arg| invocation("p", "", &["--check"], arg);
        assert_eq!(ask(None), Invocation::Run);
        assert_eq!(ask(Some("--check")), Invocation::Flag("--check"));
        assert_eq!(ask(Some("--help")), Invocation::Exit(ExitCode::SUCCESS));
        assert_eq!(ask(Some("-V")), Invocation::Exit(ExitCode::SUCCESS));
        assert_eq!(ask(Some("--chek")), Invocation::Exit(ExitCode::from(2)));
        assert_eq!(
            invocation("p", "", &[], Some("--check")),
            Invocation::Exit(ExitCode::from(2))
        );
    }
}
