//! `fletch`: the command-line client. Everything happens in [`gateway::client::main`].

fn main() -> std::process::ExitCode {
    gateway::client::main()
}
