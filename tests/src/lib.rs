//! # Process-level test support
//!
//! Starts real `fletchd` processes (and, for the compatibility suite, a real InfluxDB 1.6.7
//! `influxd`) on loopback ports and talks to them over HTTP as clients do. Every wait here is
//! a condition polled against a deadline, never a fixed sleep.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the workspace's binaries are: next to the test executable's `deps` directory.
pub fn bin(name: &str) -> PathBuf {
    if let Ok(p) = std::env::var(format!("FLETCH_{}_BIN", name.to_uppercase())) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} not built; run the tests with `cargo test --workspace`",
        p.display()
    );
    p
}

/// Runs `python3 ARGS...` (a client script that prints one JSON object) and answers what it
/// printed; panics with its output if it failed.
pub fn python_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new("python3")
        .args(args)
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// Polls `f` until it returns `Some`, or panics after `deadline`.
pub fn wait_for<T>(what: &str, deadline: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running `fletchd`.
pub struct Fletchd {
    pub child: Child,
    pub dir: PathBuf,
    pub http: String,
    pub meta_http: String,
    /// The advertised Raft / internal RPC address.
    pub tcp: String,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Fletchd {
    /// Starts `fletchd --dir DIR` on free loopback ports with extra environment variables.
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> Self {
        Self::launch(
            dir,
            &[
                "--http-bind-address",
                "127.0.0.1:0",
                "--meta-http-bind-address",
                "127.0.0.1:0",
                "--meta-bind-address",
                "127.0.0.1:0",
            ],
            env,
        )
    }

    /// Starts `fletchd --dir DIR ARGS...` and waits until it serves HTTP.
    pub fn launch(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(bin("fletchd"));
        cmd.arg("--dir")
            .arg(dir)
            .args(args)
            .env("RUST_LOG", "info,openraft=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn fletchd");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        let started = Instant::now();
        let find = |key: &str, child: &mut Child| {
            let key = format!("{key}=");
            loop {
                let found = {
                    let lines = log.lock().unwrap_or_else(|e| e.into_inner());
                    lines.iter().find_map(|l| {
                        l.split_whitespace()
                            .find_map(|w| w.strip_prefix(key.as_str()))
                            .map(str::to_string)
                    })
                };
                if let Some(v) = found {
                    return v;
                }
                // A process that exited, or one that never listens: fail with what it said.
                let exited = child.try_wait().ok().flatten();
                if exited.is_some() || started.elapsed() > Duration::from_secs(60) {
                    std::thread::sleep(Duration::from_millis(100));
                    let text = log.lock().unwrap_or_else(|e| e.into_inner()).join("\n");
                    panic!("fletchd did not come up ({exited:?}); its log:\n{text}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        // With `[http] enabled = false` there is no client API address to wait for.
        let http_disabled = env
            .iter()
            .any(|(k, v)| *k == "FLETCH_HTTP_ENABLED" && *v == "false");
        let http = match http_disabled {
            true => String::new(),
            false => find("http_addr", &mut child),
        };
        let meta_disabled = env
            .iter()
            .any(|(k, v)| *k == "FLETCH_META_ENABLED" && *v == "false");
        let meta_http = match meta_disabled {
            true => String::new(),
            false => find("meta_http_addr", &mut child),
        };
        let tcp = find("tcp_addr", &mut child);
        Self {
            child,
            dir: dir.to_path_buf(),
            http,
            meta_http,
            tcp,
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for the exit status.
    pub fn terminate(self) -> std::process::ExitStatus {
        self.signal("-TERM")
    }

    /// Freezes the process (SIGSTOP): it holds its connections and answers nothing, as a
    /// paused container does, until [`Self::resume`].
    pub fn pause(&self) {
        let _ = Command::new("kill")
            .args(["-STOP", &self.child.id().to_string()])
            .status();
    }

    /// SIGCONT after [`Self::pause`].
    pub fn resume(&self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status();
    }

    /// Sends a signal (`-TERM`, `-INT`) and waits for the exit status.
    pub fn signal(mut self, sig: &str) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args([sig, &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "fletchd did not exit after {sig}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n")
    }
}

impl Drop for Fletchd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running InfluxDB 1.6.7 (`influxd` from Debian's package) on loopback ports.
pub struct Influxd {
    pub child: Child,
    pub http: String,
    _dir: tempfile::TempDir,
}

impl Influxd {
    /// Starts `influxd`, or returns why it cannot (it is not installed).
    pub fn start() -> Result<Self, String> {
        Self::start_with_http("")
    }

    /// [`Self::start`] with more `[http]` settings (TOML lines).
    pub fn start_with_http(http_settings: &str) -> Result<Self, String> {
        Self::start_with(http_settings, "")
    }

    /// [`Self::start`] with more `[http]` and `[coordinator]` settings (TOML lines).
    pub fn start_with(http_settings: &str, coordinator_settings: &str) -> Result<Self, String> {
        let exe = ["/usr/bin/influxd", "/usr/local/bin/influxd"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .ok_or("influxd is not installed (apt-get install influxdb); .ci/run installs it")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = free_port();
        let rpc = free_port();
        let conf = format!(
            "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n[meta]\ndir = \"{d}/meta\"\n[data]\ndir = \"{d}/data\"\nwal-dir = \"{d}/wal\"\nquery-log-enabled = false\n[coordinator]\nmax-select-buckets = 100000\n{coordinator_settings}\n[monitor]\nstore-enabled = false\n[http]\nbind-address = \"127.0.0.1:{port}\"\nlog-enabled = false\n{http_settings}\n[logging]\nlevel = \"warn\"\n",
            d = dir.path().display()
        );
        let conf_path = dir.path().join("influxdb.conf");
        std::fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
        let child = Command::new(exe)
            .arg("-config")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        let http = format!("127.0.0.1:{port}");
        let url = format!("http://{http}/ping");
        wait_for("influxd to answer /ping", Duration::from_secs(60), || {
            http::blocking_get_ok(&url).then_some(())
        });
        Ok(Self {
            child,
            http,
            _dir: dir,
        })
    }
}

/// InfluxDB 1.6.7 and a Fletch node side by side, for a test that compares them: their base
/// URLs (influxd first). `None` (the test skips) when `FLETCH_SKIP_INFLUXDB_COMPAT` is set.
pub struct Both {
    pub influx: Influxd,
    pub fletch: Fletchd,
    pub urls: [String; 2],
    _dir: tempfile::TempDir,
}

impl Both {
    pub fn start() -> Option<Self> {
        if std::env::var_os("FLETCH_SKIP_INFLUXDB_COMPAT").is_some() {
            eprintln!("skipped: FLETCH_SKIP_INFLUXDB_COMPAT is set");
            return None;
        }
        let influx = Influxd::start().expect("influxd (apt-get install influxdb)");
        let dir = tempfile::tempdir().expect("temporary directory");
        let fletch = Fletchd::start(dir.path(), &[]);
        let urls = [
            format!("http://{}", influx.http),
            fletch.url("").trim_end_matches('/').to_string(),
        ];
        Some(Self {
            influx,
            fletch,
            urls,
            _dir: dir,
        })
    }
}

impl Drop for Influxd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port for a server that must keep its address across restarts (cluster members).
/// Taken below Linux's ephemeral range (32768 and up), where the servers of other tests, which
/// bind port 0, never land, and handed out once per process, so that parallel tests in one
/// binary cannot be given the same port.
pub fn fixed_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = 20_000 + (std::process::id() % 500) * 24;
    loop {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (base - 20_000 + offset) % 12_000;
        if std::net::TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
            return port as u16;
        }
    }
}

/// A loopback port that was free a moment ago (for servers that cannot bind port 0 and report).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Tiny blocking HTTP helpers over a private runtime (tests are synchronous).
pub mod cluster;

pub mod http {
    use std::sync::OnceLock;

    fn rt() -> &'static tokio::runtime::Runtime {
        static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
        RT.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime")
        })
    }

    fn client() -> &'static ::reqwest::Client {
        static C: OnceLock<::reqwest::Client> = OnceLock::new();
        C.get_or_init(|| {
            ::reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .expect("client")
        })
    }

    pub fn blocking_get_ok(url: &str) -> bool {
        rt().block_on(async {
            client()
                .get(url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
    }

    /// A response: status and body text.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Resp {
        pub status: u16,
        pub body: String,
        pub headers: Vec<(String, String)>,
    }

    impl Resp {
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    pub fn send(
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Resp, String> {
        rt().block_on(async {
            let m = ::reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
            let mut req = client().request(m, url).body(body);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            let resp = req.send().await.map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                .collect();
            let body = resp.text().await.map_err(|e| e.to_string())?;
            Ok(Resp {
                status,
                body,
                headers,
            })
        })
    }

    pub fn post(url: &str, body: &str) -> Resp {
        send("POST", url, &[], body.as_bytes().to_vec()).expect("request")
    }

    /// POSTs `q` as a form, as clients do.
    pub fn query(base: &str, q: &str, extra: &str) -> Resp {
        let form = format!("q={}", urlencode(q));
        send(
            "POST",
            &format!("{base}/query{extra}"),
            &[("Content-Type", "application/x-www-form-urlencoded")],
            form.into_bytes(),
        )
        .expect("query")
    }

    pub fn urlencode(s: &str) -> String {
        let mut out = String::new();
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    out.push(b as char)
                }
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    }
}
