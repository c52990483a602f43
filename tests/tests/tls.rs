//! TLS on the API port (`[http] https-enabled`), with certificates made here by `openssl`: the
//! HTTP API and Flight SQL behind one certificate, as clients use them (reqwest, the fletch and
//! influx shells, the Python clients, the ADBC driver), and what a wrong certificate or a
//! clear-text client gets.

use std::path::{Path, PathBuf};
use std::process::Command;

use fletch_tests::{Fletchd, bin};

/// A test CA and a server certificate it signed for `localhost` and `127.0.0.1`, plus a CA
/// that signed nothing of the server's.
struct Certs {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    /// The certificate and its key in one file (1.x's `https-private-key = ""`).
    combined: PathBuf,
    wrong_ca: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn certs(dir: &Path) -> Certs {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for (name, cn) in [("ca", "fletch test CA"), ("wrong-ca", "someone else's CA")] {
        let mut args = vec!["req", "-x509"];
        args.extend(ec);
        let (key, pem, subj) = (
            format!("{name}.key"),
            format!("{name}.pem"),
            format!("/CN={cn}"),
        );
        args.extend(["-keyout", &key, "-out", &pem, "-days", "2", "-subj", &subj]);
        openssl(dir, &args);
    }
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let mut args = vec!["req"];
    args.extend(ec);
    args.extend([
        "-keyout",
        "key.pem",
        "-out",
        "req.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(dir, &args);
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "req.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    let combined = dir.join("combined.pem");
    let both = [
        std::fs::read(dir.join("cert.pem")).unwrap(),
        std::fs::read(dir.join("key.pem")).unwrap(),
    ]
    .concat();
    std::fs::write(&combined, both).unwrap();
    Certs {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
        combined,
        wrong_ca: dir.join("wrong-ca.pem"),
    }
}

fn client(ca: &Path) -> reqwest::blocking::Client {
    let pem = std::fs::read(ca).unwrap();
    reqwest::blocking::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

fn start(data: &Path, certs: &Certs, key_in_cert: bool, flight: &str) -> Fletchd {
    let (cert, key) = match key_in_cert {
        true => (certs.combined.to_str().unwrap(), ""),
        false => (certs.cert.to_str().unwrap(), certs.key.to_str().unwrap()),
    };
    Fletchd::start(
        data,
        &[
            ("FLETCH_HTTP_HTTPS_ENABLED", "true"),
            ("FLETCH_HTTP_HTTPS_CERTIFICATE", cert),
            ("FLETCH_HTTP_HTTPS_PRIVATE_KEY", key),
            ("FLETCH_FLIGHT_BIND_ADDRESS", flight),
        ],
    )
}

#[test]
fn the_api_port_serves_tls_to_every_client() {
    let dir = tempfile::tempdir().unwrap();
    let certs = certs(dir.path());
    let flight = format!("127.0.0.1:{}", fletch_tests::free_port());
    let node = start(&dir.path().join("node"), &certs, false, &flight);
    let base = format!("https://{}", node.http);
    let trusted = client(&certs.ca);

    // HTTP over TLS, by a client that trusts the CA.
    let ping = trusted.get(format!("{base}/ping")).send().unwrap();
    assert_eq!(ping.status(), 204);
    let r = trusted
        .post(format!("{base}/query"))
        .form(&[("q", "CREATE DATABASE tls")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);

    // A client trusting another CA fails its handshake; a clear-text request gets no answer.
    let e = client(&certs.wrong_ca)
        .get(format!("{base}/ping"))
        .send()
        .unwrap_err();
    assert!(chain(&e).contains("UnknownIssuer"), "{}", chain(&e));
    let clear = reqwest::blocking::Client::new()
        .get(format!("http://{}/ping", node.http))
        .send();
    assert!(
        clear.as_ref().map_or(true, |r| r.status() != 204),
        "a clear-text request was answered: {clear:?}"
    );
    // The node goes on serving TLS clients.
    assert_eq!(
        trusted.get(format!("{base}/ping")).send().unwrap().status(),
        204
    );

    // The fletch shell: -ssl with -unsafeSsl, or with the CA in SSL_CERT_FILE; without either,
    // the certificate is refused with the reason.
    let (host, port) = node.http.rsplit_once(':').unwrap();
    let shell = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = Command::new(bin("fletch"));
        cmd.args(["-host", host, "-port", port, "-execute", "SHOW DATABASES"]);
        cmd.args(args).env_remove("SSL_CERT_FILE");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let out = shell(&["-ssl", "-unsafeSsl"], &[]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("tls"),
        "{out:?}"
    );
    let out = shell(&["-ssl"], &[("SSL_CERT_FILE", certs.ca.to_str().unwrap())]);
    assert!(out.status.success(), "{out:?}");
    let out = shell(&["-ssl"], &[]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("invalid peer certificate: UnknownIssuer"),
        "{out:?}"
    );

    // InfluxDB 1.6.7's own shell, a Go TLS client (installed by .ci/run).
    if Command::new("influx").arg("-version").output().is_ok() {
        let out = Command::new("influx")
            .args(["-ssl", "-unsafeSsl", "-host", host, "-port", port])
            .args(["-execute", "SHOW DATABASES"])
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("tls"),
            "{out:?}"
        );
        let out = Command::new("influx")
            .args([
                "-ssl",
                "-host",
                host,
                "-port",
                port,
                "-execute",
                "SHOW DATABASES",
            ])
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .contains("x509: certificate signed by unknown authority"),
            "{out:?}"
        );
    }

    // The Python clients users run: the 1.x client, the v2 write client, influxdb3-python
    // and ADBC over Flight (on the API port and on [flight] bind-address).
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/tls.py");
    let v = fletch_tests::python_json(&[
        script,
        &node.http,
        certs.ca.to_str().unwrap(),
        certs.wrong_ca.to_str().unwrap(),
        &flight,
    ]);
    let ok = |k: &str| {
        assert_eq!(v[k][0], "ok", "{k}: {}", v[k]);
        v[k][1].clone()
    };
    let err = |k: &str| {
        assert_eq!(v[k][0], "error", "{k}: {}", v[k]);
        v[k][1].as_str().unwrap_or("").to_string()
    };
    assert_eq!(
        ok("influxdb"),
        serde_json::json!([{"time": "1970-01-01T00:00:01Z", "v": 1.5, "t": "a"}])
    );
    assert!(
        err("influxdb wrong ca").contains("CERTIFICATE_VERIFY_FAILED"),
        "{v}"
    );
    assert_eq!(ok("influxdb-client"), true);
    assert_eq!(
        ok("influxdb3"),
        serde_json::json!([{"t": "a", "v": 1.5}, {"t": "b", "v": 2.5}])
    );
    assert_eq!(ok("adbc"), serde_json::json!([[2]]));
    assert_eq!(ok("adbc flight port"), serde_json::json!([[2]]));
    let wrong = err("adbc wrong ca");
    assert!(
        wrong.contains("certificate") || wrong.contains("handshake"),
        "{wrong}"
    );
    err("adbc clear text");
}

#[test]
fn the_key_may_be_in_the_certificate_file_and_a_bad_one_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let certs = certs(dir.path());
    let flight = format!("127.0.0.1:{}", fletch_tests::free_port());
    let node = start(&dir.path().join("node"), &certs, true, &flight);
    let ping = client(&certs.ca)
        .get(format!("https://{}/ping", node.http))
        .send()
        .unwrap();
    assert_eq!(ping.status(), 204);
    drop(node);

    // A certificate that cannot be read, or a file without a key: no start, nothing bound, and
    // the key named.
    let port = fletch_tests::free_port();
    let http = format!("127.0.0.1:{port}");
    for (cert, key, says) in [
        (
            dir.path().join("missing.pem"),
            String::new(),
            "[http] https-certificate",
        ),
        (
            certs.cert.clone(),
            certs.ca.to_str().unwrap().to_string(),
            "[http] https-private-key",
        ),
        (certs.cert.clone(), String::new(), "no private key"),
    ] {
        let out = Command::new(bin("fletchd"))
            .arg("--dir")
            .arg(dir.path().join("refused"))
            .args(["--http-bind-address", &http])
            .args(["--meta-bind-address", "127.0.0.1:0"])
            .args(["--meta-http-bind-address", "127.0.0.1:0"])
            .env("FLETCH_HTTP_HTTPS_ENABLED", "true")
            .env("FLETCH_HTTP_HTTPS_CERTIFICATE", &cert)
            .env("FLETCH_HTTP_HTTPS_PRIVATE_KEY", &key)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains(says), "{says}: {stderr}");
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "nothing may stay bound"
        );
    }
}

/// `[meta] https-enabled`: two nodes that join, replicate and read each other's shards over TLS
/// on the internal port and the meta HTTP API; strangers without the CA, and clear text, get
/// nothing.
#[test]
fn nodes_talk_tls_to_each_other() {
    use fletch_tests::cluster::Node;
    let dir = tempfile::tempdir().unwrap();
    let certs = certs(dir.path());
    let leak =
        |p: &Path| -> &'static str { Box::leak(p.to_str().unwrap().to_string().into_boxed_str()) };
    let env = vec![
        ("FLETCH_META_HTTPS_ENABLED", "true"),
        ("FLETCH_META_HTTPS_CERTIFICATE", leak(&certs.cert)),
        ("FLETCH_META_HTTPS_PRIVATE_KEY", leak(&certs.key)),
        ("FLETCH_META_HTTPS_CA_CERTIFICATE", leak(&certs.ca)),
    ];
    let mut a = Node::new(dir.path(), "a", true);
    let mut b = Node::new(dir.path(), "b", true);
    a.env = env.clone();
    b.env = env;
    a.start(&[]);
    b.start(&[&a.meta_http]);
    fletch_tests::wait_for("two data nodes", std::time::Duration::from_secs(30), || {
        let v = b.q("SHOW SERVERS");
        (v["results"][0]["series"][0]["values"].as_array()?.len() == 2).then_some(())
    });
    // Replicated writes and a read of each node's copy go over the internal port.
    a.q("CREATE DATABASE db WITH REPLICATION 2");
    // consistency=all: acknowledged once both copies, the other one's over TLS, are written.
    let w = fletch_tests::http::post(
        &format!("{}/write?db=db&consistency=all", a.url()),
        "m v=1 1\nm v=2 2\n",
    );
    assert_eq!(w.status, 204, "{}", w.body);
    let count = |n: &Node| {
        n.q("SELECT count(v) FROM db..m")["results"][0]["series"][0]["values"][0][1].clone()
    };
    assert_eq!(count(&b), 2);
    assert_eq!(count(&a), 2);

    // The meta HTTP API: TLS with the cluster's CA; another CA, or clear text, gets nothing.
    let status = client(&certs.ca)
        .get(format!("https://{}/ping", a.meta_http))
        .send()
        .unwrap();
    assert!(status.status().is_success(), "{status:?}");
    let e = client(&certs.wrong_ca)
        .get(format!("https://{}/ping", a.meta_http))
        .send()
        .unwrap_err();
    assert!(chain(&e).contains("UnknownIssuer"), "{}", chain(&e));
    let clear = reqwest::blocking::Client::new()
        .get(format!("http://{}/ping", a.meta_http))
        .send();
    assert!(clear.is_err(), "{clear:?}");

    // The internal port, as `fletchd ctl` reaches it.
    let ctl = |args: &[&str]| {
        Command::new(bin("fletchd"))
            .args(["ctl", "--bind", &a.tcp])
            .args(args)
            .arg("show")
            .env_remove("SSL_CERT_FILE")
            .output()
            .unwrap()
    };
    let ok = ctl(&["--tls", "--ca-certificate", certs.ca.to_str().unwrap()]);
    assert!(ok.status.success(), "{ok:?}");
    assert!(
        String::from_utf8_lossy(&ok.stdout).contains(&b.tcp),
        "{ok:?}"
    );
    let wrong = ctl(&[
        "--tls",
        "--ca-certificate",
        certs.wrong_ca.to_str().unwrap(),
    ]);
    assert!(!wrong.status.success(), "{wrong:?}");
    let clear = ctl(&[]);
    assert!(!clear.status.success(), "{clear:?}");
}
