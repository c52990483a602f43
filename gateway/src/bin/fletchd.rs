//! `fletchd`: the Fletch server. Everything happens in [`gateway::cli::main`].

fn main() -> std::process::ExitCode {
    gateway::cli::main()
}
