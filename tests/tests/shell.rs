//! The `fletch` shell prints what the `influx` 1.x shell prints, character for character, for
//! the same statements against the same server (Debian's `influxdb-client`; .ci/run installs it).

use std::process::Command;

use fletch_tests::Fletchd;
use fletch_tests::http::{post, query};

const STATEMENTS: &[&str] = &[
    "SHOW DATABASES",
    "SHOW RETENTION POLICIES",
    "SHOW MEASUREMENTS",
    "SHOW SERIES",
    "SHOW TAG VALUES WITH KEY = host",
    "SHOW FIELD KEYS",
    "SELECT * FROM cpu",
    "SELECT usage, host FROM cpu GROUP BY region",
    "SELECT mean(usage), max(usage) FROM cpu GROUP BY host",
    "SELECT msg FROM log",
    "SELECT top(usage, host, 2) FROM cpu",
    "SELECT usage FROM cpu; SELECT msg FROM log",
    "SELECT nothing FROM cpu",
    "SELEC 1",
    "SELECT * FROM nope.x.y",
    "SHOW SHARDS",
    "SHOW SHARD GROUPS",
    "SHOW META STATUS",
    "DROP META SERVER 42",
];

fn run(program: &str, args: &[&str], port: &str, q: &str) -> (i32, String, String) {
    let out = Command::new(program)
        .args(["-host", "127.0.0.1", "-port", port, "-database", "shell"])
        .args(args)
        .args(["-execute", q])
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn fletch_prints_like_the_influx_shell() {
    if std::env::var("FLETCH_SKIP_INFLUXDB_COMPAT").is_ok_and(|v| v == "1") {
        eprintln!("skipped: FLETCH_SKIP_INFLUXDB_COMPAT=1");
        return;
    }
    assert!(
        std::path::Path::new("/usr/bin/influx").exists(),
        "the influx shell is not installed (apt-get install influxdb-client)"
    );
    let dir = tempfile::tempdir().unwrap();
    let node = Fletchd::start(dir.path(), &[]);
    query(&node.url(""), "CREATE DATABASE shell", "");
    let r = post(
        &node.url("/write?db=shell&precision=s"),
        "cpu,host=a,region=w usage=1.5,cores=4i 0\ncpu,host=b,region=e usage=20 10\ncpu,host=a,region=w usage=3 70\nlog,host=a msg=\"a, \\\"quoted\\\" message\" 5",
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let port = node.http.rsplit(':').next().unwrap().to_string();
    let fletch = fletch_tests::bin("fletch");
    let mut diffs = Vec::new();
    for q in STATEMENTS {
        for precision in [
            &[][..],
            &["-precision", "rfc3339"][..],
            &["-format", "json"][..],
            &["-format", "json", "-pretty"][..],
            &["-format", "csv"][..],
        ] {
            let expected = run("/usr/bin/influx", precision, &port, q);
            let actual = run(fletch.to_str().unwrap(), precision, &port, q);
            if expected != actual {
                diffs.push(format!(
                    "{q} {precision:?}\n--- influx ({}):\n{}{}\n--- fletch ({}):\n{}{}",
                    expected.0, expected.1, expected.2, actual.0, actual.1, actual.2
                ));
            }
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

/// `-import` of a file in `influx -import` format: same messages (timestamps aside), same exit
/// code, same data.
#[test]
fn fletch_imports_like_the_influx_shell() {
    if std::env::var("FLETCH_SKIP_INFLUXDB_COMPAT").is_ok_and(|v| v == "1") {
        eprintln!("skipped: FLETCH_SKIP_INFLUXDB_COMPAT=1");
        return;
    }
    let influxd = fletch_tests::Influxd::start().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let node = Fletchd::start(dir.path(), &[]);
    let good = "# DDL\nCREATE DATABASE imp\nCREATE RETENTION POLICY oneday ON imp DURATION 1d REPLICATION 1\n\n# DML\n# CONTEXT-DATABASE: imp\n# CONTEXT-RETENTION-POLICY: autogen\n\ncpu,host=a v=1 1600000000000000000\ncpu,host=b v=2 1600000000000000000\n";
    let bad = good.replace("cpu,host=b", "bad line here\ncpu,host=b");
    let strip = |s: &str| -> String {
        s.lines()
            .map(|l| {
                if l.len() > 20 && l.as_bytes()[4] == b'/' && l.as_bytes()[10] == b' ' {
                    format!("TS {}", &l[20..])
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    for (name, text) in [("good", good.to_string()), ("bad", bad)] {
        let file = dir.path().join(format!("{name}.txt"));
        std::fs::write(&file, text).unwrap();
        let mut outs = Vec::new();
        for (program, http) in [
            ("/usr/bin/influx".to_string(), influxd.http.clone()),
            (
                fletch_tests::bin("fletch").display().to_string(),
                node.http.clone(),
            ),
        ] {
            let port = http.rsplit(':').next().unwrap().to_string();
            query(&format!("http://{http}"), "DROP DATABASE imp", "");
            let out = Command::new(&program)
                .args(["-host", "127.0.0.1", "-port", &port, "-import", "-path"])
                .arg(&file)
                .args(["-precision", "ns"])
                .output()
                .unwrap();
            let data = query(&format!("http://{http}"), "SELECT * FROM imp..cpu", "").body;
            outs.push((
                out.status.code(),
                strip(&String::from_utf8_lossy(&out.stdout)),
                strip(&String::from_utf8_lossy(&out.stderr)),
                data,
            ));
        }
        assert_eq!(
            outs[0], outs[1],
            "{name}: influx (left) and fletch (right) differ"
        );
    }
}

/// Runs the `fletch` prompt on `port` with `script` as its input; answers its stdout with the
/// prompts ("> ", no newline, at the start of lines) taken out.
fn interactive(port: &str, script: &str) -> String {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(fletch_tests::bin("fletch"))
        .args(["-host", "127.0.0.1", "-port", port])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn fletch");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write the script");
    let out = child.wait_with_output().expect("fletch output");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_inclusive('\n')
        .map(|mut l| {
            while let Some(rest) = l.strip_prefix("> ") {
                l = rest;
            }
            l
        })
        .collect()
}

/// The interactive commands of the shell: `use`, `format`, `precision` change the session for
/// the statements after them, and `exit` ends it (the statement after it never runs).
#[test]
fn fletch_interactive_commands_change_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let node = Fletchd::start(dir.path(), &[]);
    query(&node.url(""), "CREATE DATABASE shell", "");
    let r = post(
        &node.url("/write?db=shell&precision=s"),
        "cpu,host=b usage=20 10",
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let port = node.http.rsplit(':').next().unwrap().to_string();
    let script = "use shell\nformat csv\nSELECT usage FROM cpu\nprecision rfc3339\n\
                  SELECT usage FROM cpu\nexit\nCREATE DATABASE after_exit\n";
    let stdout = interactive(&port, script);
    assert_eq!(
        stdout,
        "Using database shell\nname,time,usage\ncpu,10000000000,20\n\
         name,time,usage\ncpu,1970-01-01T00:00:10Z,20\n"
    );
    let dbs = query(&node.url(""), "SHOW DATABASES", "").body;
    assert!(!dbs.contains("after_exit"), "{dbs}");
}

/// The shell's own commands answer with the influx 1.6.7 shell's texts (taken from that shell
/// at a terminal), and `SHOW SERVERS` prints in the layout of the 0.10 clustering guide.
#[test]
fn fletch_shell_commands_answer_as_the_influx_shell() {
    let dir = tempfile::tempdir().unwrap();
    let node = Fletchd::start(dir.path(), &[]);
    query(&node.url(""), "CREATE DATABASE mydb", "");
    let port = node.http.rsplit(':').next().unwrap().to_string();
    let script = "\
consistency one
consistency bogus
use nodb
use mydb.nope
use mydb.autogen
settings
clear
clear xx
clear rp
precision xx
format xx
pretty
pretty
chunked
chunked
chunk size 5
chunk size x
insert cpu v=4 4
insert bad line
clear db
insert cpu v=1 1
insert into mydb.autogen cpu v=5 5
history
show servers
exit
";
    let stdout = interactive(&port, script);
    let clear_help = "Possible commands for 'clear' are:\n    # Clear the database context\n    \
                      clear database\n    clear db\n\n    # Clear the retention policy context\n    \
                      clear retention policy\n    clear rp\n\t\t\n";
    let history: String = script
        .lines()
        .take_while(|l| *l != "history")
        .map(|l| format!("{l}\n"))
        .collect();
    let want = format!(
        "Unknown consistency level \"bogus\". Please use any, one, quorum, or all.\n\
         ERR: Database nodb doesn't exist. Run SHOW DATABASES for a list of existing databases.\n\
         DB does not exist!\n\
         Using database mydb\n\
         ERR: RETENTION POLICY nope doesn't exist. Run SHOW RETENTION POLICIES ON \"mydb\" for a list of existing retention polices.\n\
         Using database mydb\n\
         Using retention policy autogen\n\
         Setting           Value\n\
         --------          --------\n\
         Host              127.0.0.1:{port}\n\
         Username          \n\
         Database          mydb\n\
         RetentionPolicy   autogen\n\
         Pretty            false\n\
         Format            column\n\
         Write Consistency one\n\
         Chunked           true\n\
         Chunk Size        0\n\
         \n\
         {clear_help}\
         invalid command \"xx\".\n{clear_help}\
         retention policy context cleared\n\
         Unknown precision \"xx\". Please use rfc3339, h, m, s, ms, u or ns.\n\
         Unknown format \"xx\". Please use json, csv, or column.\n\
         Pretty print enabled\n\
         Pretty print disabled\n\
         chunked reponses disabled\n\
         chunked responses enabled\n\
         chunk size set to 5\n\
         unable to parse chunk size from \"x\"\n\
         ERR: {{\"error\":\"unable to parse 'bad line': invalid field format\"}}\n\n\
         database context cleared\n\
         ERR: {{\"error\":\"database is required\"}}\n\n\
         Note: error may be due to not setting a database or retention policy.\n\
         Please set a database with the command \"use <database>\" or\n\
         INSERT INTO <database>.<retention-policy> <point>\n\
         {history}\
         name: data_nodes\n\
         ----------------\n\
         id\thttp_addr\ttcp_addr\n\
         2\t{http}\t{tcp}\n\
         \n\
         name: meta_nodes\n\
         ----------------\n\
         id\thttp_addr\ttcp_addr\n\
         1\t{meta}\t{tcp}\n",
        http = node.http,
        meta = node.meta_http,
        tcp = node.tcp,
    );
    assert_eq!(stdout, want);
    // The inserts with a database reached the server; the one without did not.
    let r = query(&node.url(""), "SELECT v FROM mydb..cpu", "?epoch=ns");
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        v["results"][0]["series"][0]["values"],
        serde_json::json!([[4, 4], [5, 5]]),
        "{}",
        r.body
    );
}

/// `-username`/`-password` go out as basic auth on every request, and `-consistency` with the
/// writes of `-import` (seen by a stand-in server that records what it is sent).
#[test]
fn fletch_sends_credentials_and_write_consistency() {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let (mut auth, mut length) = (String::new(), 0usize);
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                let (k, v) = h.split_once(": ").unwrap_or((h, ""));
                match k.to_ascii_lowercase().as_str() {
                    "authorization" => auth = v.to_string(),
                    "content-length" => length = v.parse().unwrap_or(0),
                    _ => {}
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            record
                .lock()
                .unwrap()
                .push((request_line.trim_end().to_string(), auth));
            let answer = if request_line.contains("/write") {
                "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_string()
            } else {
                let b = "{\"results\":[{\"statement_id\":0}]}\n";
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
                    b.len()
                )
            };
            let _ = reader.get_mut().write_all(answer.as_bytes());
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.txt");
    std::fs::write(&file, "# DML\n# CONTEXT-DATABASE: db\ncpu v=1 1\n").unwrap();
    let creds = ["-username", "u", "-password", "p"];
    let out = Command::new(fletch_tests::bin("fletch"))
        .args(["-host", "127.0.0.1", "-port", &port])
        .args(creds)
        .args(["-consistency", "one", "-import", "-path"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(fletch_tests::bin("fletch"))
        .args(["-host", "127.0.0.1", "-port", &port])
        .args(creds)
        .args(["-execute", "SHOW DATABASES"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = seen.lock().unwrap().clone();
    let write = seen
        .iter()
        .find(|(line, _)| line.starts_with("POST /write?"))
        .unwrap_or_else(|| panic!("{seen:?}"));
    assert!(
        write.0.contains("db=db") && write.0.contains("consistency=one"),
        "{seen:?}"
    );
    // "u:p" in base64.
    assert!(
        seen.iter().all(|(_, auth)| auth == "Basic dTpw"),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|(line, _)| line.starts_with("POST /query")),
        "{seen:?}"
    );
}
