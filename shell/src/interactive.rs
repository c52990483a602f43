//! The interactive side of the `fletch` shell: the prompt (line editing and a history file on a
//! terminal, plain lines from a pipe) and the shell's own commands, with the influx 1.6.7
//! shell's texts: `connect`, `auth`, `pretty`, `chunked`, `chunk size`, `use`, `format`,
//! `precision`, `consistency`, `history`, `settings`, `clear`, `insert`, `help`, `exit`.
//! Anything else is sent to `/query`.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use crate::client::Session;

const HELP: &str = "Usage:
        connect <host:port>   connects to another node specified by host:port
        auth                  prompts for username and password
        pretty                toggles pretty print for the json format
        chunked               turns on chunked responses from server
        chunk size <size>     sets the size of the chunked responses.  Set to 0 to reset to the default chunked size
        use <db_name>         sets current database
        format <format>       specifies the format of the server responses: json, csv, or column
        precision <format>    specifies the format of the timestamp: rfc3339, h, m, s, ms, u or ns
        consistency <level>   sets write consistency level: any, one, quorum, or all
        history               displays command history
        settings              outputs the current settings for the shell
        clear                 clears settings such as database or retention policy.  run 'clear' for help
        exit/quit/ctrl+d      quits the influx shell

        show databases        show database names
        show series           show series information
        show measurements     show measurement information
        show tag keys         show tag key information
        show field keys       show field key information
        show servers          show data and meta nodes of the cluster
        show meta status      show the Raft group as its leader sees it

        A full list of influxql commands can be found at:
        https://docs.influxdata.com/influxdb/latest/query_language/spec/
";

const CLEAR_HELP: &str = "Possible commands for 'clear' are:
    # Clear the database context
    clear database
    clear db

    # Clear the retention policy context
    clear retention policy
    clear rp
\t\t
";

/// Where lines come from: an editor with history on a terminal, else plain lines.
enum Input {
    Editor(Box<rustyline::DefaultEditor>, Option<std::path::PathBuf>),
    Plain(std::io::StdinLock<'static>),
}

impl Input {
    fn open() -> Self {
        if std::io::stdin().is_terminal()
            && let Ok(mut ed) = rustyline::DefaultEditor::new()
        {
            let path = std::env::var_os("HOME")
                .map(|h| std::path::PathBuf::from(h).join(".fletch_history"));
            if let Some(p) = &path {
                let _ = ed.load_history(p);
            }
            return Self::Editor(Box::new(ed), path);
        }
        Self::Plain(std::io::stdin().lock())
    }

    /// The next line, or `None` at the end of input (ctrl+d).
    fn read(&mut self, prompt: &str) -> Option<String> {
        match self {
            Self::Editor(ed, _) => loop {
                match ed.readline(prompt) {
                    Ok(line) => return Some(line),
                    // ctrl+c clears the line, as in the influx shell.
                    Err(rustyline::error::ReadlineError::Interrupted) => continue,
                    Err(_) => return None,
                }
            },
            Self::Plain(stdin) => {
                print!("{prompt}");
                let _ = std::io::stdout().flush();
                let mut line = String::new();
                match stdin.read_line(&mut line) {
                    Ok(0) | Err(_) => None,
                    Ok(_) => Some(line.trim_end_matches(['\n', '\r']).to_string()),
                }
            }
        }
    }

    fn remember(&mut self, line: &str, history: &mut Vec<String>) {
        history.push(line.to_string());
        if let Self::Editor(ed, path) = self {
            let _ = ed.add_history_entry(line);
            if let Some(p) = path
                && let Err(e) = ed.save_history(p)
            {
                println!("There was an error writing history file: {e}");
            }
        }
    }
}

/// Runs the prompt until `exit`, `quit` or the end of input.
pub(crate) async fn interactive(s: &mut Session) -> ExitCode {
    let mut input = Input::open();
    if matches!(input, Input::Editor(..)) {
        match s.ping().await {
            Ok(version) => {
                println!("Connected to {} version {version}", s.base);
                println!("Fletch shell version: {}", env!("CARGO_PKG_VERSION"));
            }
            Err(e) => println!("Failed to connect to {}: {e}", s.base),
        }
    }
    let mut history: Vec<String> = Vec::new();
    while let Some(line) = input.read("> ") {
        let cmd = line.trim();
        if cmd.is_empty() {
            continue;
        }
        let lower = cmd.to_ascii_lowercase();
        if lower == "exit" || lower == "quit" {
            return ExitCode::SUCCESS;
        }
        if lower == "history" {
            for h in &history {
                println!("{h}");
            }
        } else {
            command(s, cmd, &lower, &mut input).await;
        }
        input.remember(cmd, &mut history);
    }
    ExitCode::SUCCESS
}

/// The argument after a command word, with its original case.
fn rest<'a>(cmd: &'a str, word: &str) -> &'a str {
    cmd[word.len()..].trim()
}

async fn command(s: &mut Session, cmd: &str, lower: &str, input: &mut Input) {
    let first = lower.split_whitespace().next().unwrap_or("");
    match first {
        "connect" => {
            let target = rest(cmd, "connect");
            if let Err(e) = s.connect(target).await {
                println!("ERR: Failed to connect to {}: {e}", s.base);
            }
        }
        "auth" => {
            s.username = input.read("username: ").unwrap_or_default();
            s.password = input.read("password: ").unwrap_or_default();
        }
        "pretty" if lower == "pretty" => {
            s.pretty = !s.pretty;
            println!(
                "Pretty print {}",
                if s.pretty { "enabled" } else { "disabled" }
            );
        }
        "chunked" if lower == "chunked" => {
            s.chunked = !s.chunked;
            // (sic: the influx shell's spelling when turning chunking off)
            println!(
                "{}",
                if s.chunked {
                    "chunked responses enabled"
                } else {
                    "chunked reponses disabled"
                }
            );
        }
        "chunk" if lower.starts_with("chunk size") => {
            let n = rest(cmd, "chunk size");
            match n.parse::<u64>() {
                Ok(n) => {
                    s.chunk_size = n;
                    println!("chunk size set to {n}");
                }
                Err(_) => println!("unable to parse chunk size from \"{n}\""),
            }
        }
        "use" => s.use_database(rest(cmd, "use")).await,
        "format" => {
            let f = rest(lower, "format");
            match f {
                "json" | "csv" | "column" => s.format = f.to_string(),
                _ => println!("Unknown format \"{f}\". Please use json, csv, or column."),
            }
        }
        "precision" => {
            let p = rest(lower, "precision");
            match p {
                "rfc3339" | "h" | "m" | "s" | "ms" | "u" | "ns" => s.precision = p.to_string(),
                _ => {
                    println!("Unknown precision \"{p}\". Please use rfc3339, h, m, s, ms, u or ns.")
                }
            }
        }
        "consistency" => {
            let c = rest(lower, "consistency");
            match c {
                "any" | "one" | "quorum" | "all" => s.consistency = c.to_string(),
                _ => println!(
                    "Unknown consistency level \"{c}\". Please use any, one, quorum, or all."
                ),
            }
        }
        "settings" => print!("{}", s.settings()),
        "clear" => match rest(lower, "clear") {
            "" => print!("{CLEAR_HELP}"),
            "database" | "db" => {
                s.database.clear();
                s.retention_policy.clear();
                println!("database context cleared");
            }
            "retention policy" | "rp" => {
                s.retention_policy.clear();
                println!("retention policy context cleared");
            }
            other => print!("invalid command \"{other}\".\n{CLEAR_HELP}"),
        },
        "help" => print!("{HELP}"),
        "insert" => s.insert(rest(cmd, "insert")).await,
        _ => match s.run(cmd).await {
            Ok((out, error)) => {
                print!("{out}");
                if let Some(e) = error {
                    println!("ERR: {e}");
                }
            }
            Err(e) => println!("ERR: {e}"),
        },
    }
}
