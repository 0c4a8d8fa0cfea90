//! `xclade-auth`: the command line is `auth_server::cli` (one file per command).

fn main() -> std::process::ExitCode {
    auth_server::cli::main()
}
