//! `fletch`: the command-line client. Everything happens in [`shell::client::main`].

fn main() -> std::process::ExitCode {
    shell::client::main()
}
