//! Users, privileges and `[http] auth-enabled`, as InfluxDB 1.6.7 answers them: the same
//! requests (statements, credentials in every form, JWTs good and bad) sent to a real `influxd`
//! with auth on and to `fletchd` with auth on, statuses and bodies compared; then what only
//! Fletch has (failed logins limited per client, passwords kept out of the log, the v3 API and
//! Flight SQL behind the same credentials).

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use fletch_tests::http::{Resp, send, urlencode};
use fletch_tests::{Fletchd, Influxd};

const SECRET: &str = "s3cret";

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// An HS256 (or `alg`) JWT with `claims`, signed with `secret` (HMAC-SHA256 made here with
/// Python's standard library, so that the test does not share Fletch's code).
fn jwt(alg: &str, claims: &str, secret: &str) -> String {
    let head = b64(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#).as_bytes());
    let body = b64(claims.as_bytes());
    let signed = format!("{head}.{body}");
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys,hmac,hashlib,base64;print(base64.urlsafe_b64encode(hmac.new(sys.argv[1].encode(),sys.argv[2].encode(),hashlib.sha256).digest()).rstrip(b'=').decode())",
            secret,
            &signed,
        ])
        .output()
        .expect("python3");
    format!("{signed}.{}", String::from_utf8_lossy(&out.stdout).trim())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// One request of the script: method, path with parameters, Authorization header, body.
struct Call {
    method: &'static str,
    path: String,
    auth: Option<String>,
    body: String,
}

fn q(statement: &str, extra: &str, auth: Option<String>) -> Call {
    Call {
        method: "POST",
        path: format!("/query?q={}{extra}", urlencode(statement)),
        auth,
        body: String::new(),
    }
}

fn write(extra: &str, auth: Option<String>) -> Call {
    Call {
        method: "POST",
        path: format!("/write?{extra}"),
        auth,
        body: "m,host=a v=1 1000000000\n".into(),
    }
}

fn run(base: &str, c: &Call) -> Resp {
    let mut headers = Vec::new();
    if let Some(a) = &c.auth {
        headers.push(("Authorization", a.as_str()));
    }
    send(
        c.method,
        &format!("{base}{}", c.path),
        &headers,
        c.body.clone().into_bytes(),
    )
    .expect("request")
}

/// The script: bootstrap rules, user statements and their errors, privileges, credentials in
/// every form, JWTs.
fn script() -> Vec<(String, Call)> {
    let admin = Some(basic("admin", "pw"));
    let bob = Some(basic("bob", "b"));
    let t = now();
    let token =
        |claims: String, secret: &str| Some(format!("Bearer {}", jwt("HS256", &claims, secret)));
    let mut s: Vec<(String, Call)> = vec![
        // No user yet: only the creation of an admin runs.
        ("no users: a read".into(), q("SHOW DATABASES", "", None)),
        (
            "no users: a non-admin user".into(),
            q("CREATE USER bob WITH PASSWORD 'b'", "", None),
        ),
        (
            "no users: a write to no database".into(),
            write("db=x", None),
        ),
        (
            "the first admin".into(),
            q(
                "CREATE USER admin WITH PASSWORD 'pw' WITH ALL PRIVILEGES",
                "",
                None,
            ),
        ),
        // Credentials now required.
        ("no credentials".into(), q("SHOW DATABASES", "", None)),
        (
            "wrong password".into(),
            q("SHOW DATABASES", "", Some(basic("admin", "bad"))),
        ),
        (
            "unknown user".into(),
            q("SHOW DATABASES", "", Some(basic("nobody", "x"))),
        ),
        ("u without p".into(), q("SHOW DATABASES", "&u=admin", None)),
        ("u and p".into(), q("SHOW DATABASES", "&u=admin&p=pw", None)),
        (
            "bad u and p, good header".into(),
            q("SHOW DATABASES", "&u=admin&p=bad", admin.clone()),
        ),
        (
            "malformed basic".into(),
            q("SHOW DATABASES", "", Some("Basic !!!".into())),
        ),
        (
            "user statements".into(),
            q(
                "CREATE DATABASE db; CREATE USER bob WITH PASSWORD 'b'; CREATE USER bob WITH PASSWORD 'b'; CREATE USER bob WITH PASSWORD 'c'",
                "",
                admin.clone(),
            ),
        ),
        (
            "re-create as admin".into(),
            q(
                "CREATE USER bob WITH PASSWORD 'b' WITH ALL PRIVILEGES",
                "",
                admin.clone(),
            ),
        ),
        (
            "grants and revokes".into(),
            q(
                "SHOW USERS; SHOW GRANTS FOR bob; GRANT READ ON db TO bob; SHOW GRANTS FOR bob; GRANT WRITE ON db TO bob; SHOW GRANTS FOR bob; GRANT ALL ON db TO bob; SHOW GRANTS FOR bob; REVOKE READ ON db FROM bob; SHOW GRANTS FOR bob; REVOKE ALL ON db FROM bob; SHOW GRANTS FOR bob",
                "",
                admin.clone(),
            ),
        ),
    ];
    for stmt in [
        "GRANT READ ON nodb TO bob",
        "GRANT READ ON db TO nobody",
        "REVOKE READ ON db FROM nobody",
        "REVOKE READ ON nodb FROM bob",
        "GRANT ALL TO nobody",
        "REVOKE ALL PRIVILEGES FROM nobody",
        "DROP USER nobody",
        "SET PASSWORD FOR nobody = 'x'",
        "SHOW GRANTS FOR nobody",
        "CREATE USER \"\" WITH PASSWORD 'x'",
        "GRANT READ TO bob",
        "CREATE USER bob WITH PASSWORD x",
    ] {
        s.push((stmt.into(), q(stmt, "", admin.clone())));
    }
    s.push((
        "grant read".into(),
        q("GRANT READ ON db TO bob", "", admin.clone()),
    ));
    // What a reader may and may not do.
    for (stmt, extra) in [
        ("SHOW DATABASES", ""),
        ("SELECT * FROM m", "&db=db"),
        ("SELECT * FROM other.autogen.m", "&db=db"),
        ("SELECT * FROM m", ""),
        ("SELECT * FROM m; CREATE DATABASE x", "&db=db"),
        ("CREATE USER z WITH PASSWORD 'abc'", "&db=db"),
        ("SET PASSWORD FOR bob = 'abc'", "&db=db"),
        ("DROP SERIES FROM m WHERE a = 'b'", "&db=db"),
        ("DELETE FROM m", "&db=db"),
        ("DROP MEASUREMENT m", "&db=db"),
        (
            "SHOW MEASUREMENTS; SHOW TAG KEYS; SHOW FIELD KEYS ON db; SHOW SERIES; SHOW RETENTION POLICIES",
            "&db=db",
        ),
        ("SHOW SHARDS", "&db=db"),
        ("SHOW USERS", "&db=db"),
        ("SHOW GRANTS FOR bob", "&db=db"),
        ("KILL QUERY 1", "&db=db"),
        (
            "SELECT mean(v) INTO db.autogen.x FROM m GROUP BY time(1h)",
            "&db=db",
        ),
        ("SELECT * FROM (SELECT * FROM nodb..m)", "&db=db"),
        (
            "CREATE RETENTION POLICY r ON db DURATION 1h REPLICATION 1",
            "",
        ),
        ("DROP DATABASE db", ""),
    ] {
        s.push((
            format!("reader: {stmt} {extra}"),
            q(stmt, extra, bob.clone()),
        ));
    }
    // Writes.
    s.push(("reader writes".into(), write("db=db", bob.clone())));
    s.push(("bad p writes".into(), write("db=db&u=bob&p=bad", None)));
    s.push(("anonymous write".into(), write("db=db", None)));
    s.push(("write to no database".into(), write("db=nodb", bob.clone())));
    s.push(("write without db".into(), write("", bob.clone())));
    s.push((
        "grant write".into(),
        q("GRANT WRITE ON db TO bob", "", admin.clone()),
    ));
    s.push(("writer writes".into(), write("db=db", bob.clone())));
    s.push((
        "writer cannot read".into(),
        q("SELECT * FROM m", "&db=db", bob.clone()),
    ));
    s.push((
        "admin reads".into(),
        q("SELECT * FROM m", "&db=db", admin.clone()),
    ));
    // JWTs (`[http] shared-secret`).
    let exp = t + 3600;
    for (what, claims, secret) in [
        (
            "jwt",
            format!(r#"{{"username":"bob","exp":{exp}}}"#),
            SECRET,
        ),
        (
            "jwt expired",
            format!(r#"{{"username":"bob","exp":{}}}"#, t - 100),
            SECRET,
        ),
        (
            "jwt forged",
            format!(r#"{{"username":"bob","exp":{exp}}}"#),
            "wrong",
        ),
        (
            "jwt without exp",
            r#"{"username":"bob"}"#.to_string(),
            SECRET,
        ),
        (
            "jwt exp a string",
            format!(r#"{{"username":"bob","exp":"{exp}"}}"#),
            SECRET,
        ),
        (
            "jwt empty user",
            format!(r#"{{"username":"","exp":{exp}}}"#),
            SECRET,
        ),
        (
            "jwt user a number",
            format!(r#"{{"username":5,"exp":{exp}}}"#),
            SECRET,
        ),
        (
            "jwt unknown user",
            format!(r#"{{"username":"carl","exp":{exp}}}"#),
            SECRET,
        ),
        (
            "jwt not yet valid",
            format!(r#"{{"username":"bob","exp":{exp},"nbf":{exp}}}"#),
            SECRET,
        ),
    ] {
        s.push((what.into(), q("SHOW DATABASES", "", token(claims, secret))));
    }
    s.push((
        "jwt signed RS256".into(),
        q(
            "SHOW DATABASES",
            "",
            Some(format!(
                "Bearer {}",
                jwt(
                    "RS256",
                    &format!(r#"{{"username":"bob","exp":{exp}}}"#),
                    SECRET
                )
            )),
        ),
    ));
    s.push((
        "bearer not a jwt".into(),
        q("SHOW DATABASES", "", Some("Bearer abc".into())),
    ));
    // Password changes, admin changes, the last admin dropped.
    s.push((
        "admin flag".into(),
        q(
            "GRANT ALL PRIVILEGES TO bob; SHOW USERS; REVOKE ALL FROM bob; SHOW USERS; SET PASSWORD FOR bob = 'nb'",
            "",
            admin.clone(),
        ),
    ));
    s.push(("old password".into(), q("SHOW DATABASES", "", bob.clone())));
    s.push((
        "new password".into(),
        q("SHOW DATABASES", "", Some(basic("bob", "nb"))),
    ));
    s.push((
        "privileges go with their database".into(),
        q(
            // (Not SHOW GRANTS of two databases: 1.x lists them in Go's random map order.)
            "CREATE DATABASE db2; GRANT READ ON db2 TO bob; DROP DATABASE db2; SHOW GRANTS FOR bob",
            "",
            admin.clone(),
        ),
    ));
    s.push((
        "the last admin dropped".into(),
        q("DROP USER admin; SHOW USERS", "", admin.clone()),
    ));
    s.push((
        "no admin left".into(),
        q("SHOW DATABASES", "", Some(basic("bob", "nb"))),
    ));
    s.push((
        "no admin left: create one".into(),
        q(
            "CREATE USER a2 WITH PASSWORD 'p' WITH ALL PRIVILEGES",
            "",
            None,
        ),
    ));
    s
}

fn shape(r: &Resp) -> String {
    format!("{} {}", r.status, r.body.trim_end())
}

#[test]
fn users_and_auth_answer_like_influxdb_1_6_7() {
    let influxd = match Influxd::start_with_http(&format!(
        "auth-enabled = true\nshared-secret = \"{SECRET}\"\n"
    )) {
        Ok(i) => i,
        Err(why) => panic!("the compatibility suite needs influxd: {why}"),
    };
    let dir = tempfile::tempdir().unwrap();
    let fletch = Fletchd::start(
        dir.path(),
        &[
            ("FLETCH_HTTP_AUTH_ENABLED", "true"),
            ("FLETCH_HTTP_SHARED_SECRET", SECRET),
            ("FLETCH_HTTP_LOG_ENABLED", "true"),
            // The script fails logins on purpose, more than the default limit allows.
            ("FLETCH_HTTP_MAX_FAILED_LOGINS", "0"),
        ],
    );
    let reference = format!("http://{}", influxd.http);
    let ours = format!("http://{}", fletch.http);
    let mut differences = Vec::new();
    for (what, call) in script() {
        let want = shape(&run(&reference, &call));
        let got = shape(&run(&ours, &call));
        if want != got {
            differences.push(format!("{what}:\n  influxd: {want}\n  fletchd: {got}"));
        }
    }
    assert!(
        differences.is_empty(),
        "{} differences:\n{}",
        differences.len(),
        differences.join("\n")
    );
    // Passwords never reach the log: not in statements, not in the URL's `p`.
    let log = fletch.log_text();
    for secret in ["'pw'", "p=pw", "'nb'", "p=bad", SECRET] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
    assert!(
        log.contains("p=%5BREDACTED%5D"),
        "the request log lists requests"
    );
}

fn fresh_with_admin() -> (Fletchd, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let fletch = Fletchd::start(
        dir.path(),
        &[
            ("FLETCH_HTTP_AUTH_ENABLED", "true"),
            ("FLETCH_HTTP_SHARED_SECRET", SECRET),
        ],
    );
    let base = format!("http://{}", fletch.http);
    let r = run(
        &base,
        &q(
            "CREATE USER admin WITH PASSWORD 'pw' WITH ALL PRIVILEGES; CREATE DATABASE db; CREATE DATABASE other; CREATE USER bob WITH PASSWORD 'b'; GRANT READ ON db TO bob",
            "",
            None,
        ),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!r.body.contains("error"), "{}", r.body);
    let w = run(&base, &write("db=db", Some(basic("admin", "pw"))));
    assert_eq!(w.status, 204, "{}", w.body);
    let w = run(&base, &write("db=other", Some(basic("admin", "pw"))));
    assert_eq!(w.status, 204, "{}", w.body);
    (fletch, dir, base)
}

#[test]
fn failed_logins_are_limited_per_client_and_good_ones_are_not() {
    let (_fletch, _dir, base) = fresh_with_admin();
    let bad = q("SHOW DATABASES", "", Some(basic("admin", "wrong")));
    let good = q("SHOW DATABASES", "", Some(basic("admin", "pw")));
    // Good logins do not count.
    for _ in 0..20 {
        assert_eq!(run(&base, &good).status, 200);
    }
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(run(&base, &bad).status);
    }
    assert_eq!(&statuses[..10], &[401; 10]);
    assert_eq!(&statuses[10..], &[429, 429], "{statuses:?}");
    let refused = run(&base, &good);
    assert_eq!(
        refused.status, 429,
        "even right credentials wait: {}",
        refused.body
    );
    assert!(
        refused
            .body
            .contains("too many failed logins from this address"),
        "{}",
        refused.body
    );
}

#[test]
fn the_v3_api_and_token_scheme_take_the_same_credentials() {
    let (_fletch, _dir, base) = fresh_with_admin();
    let get = |path: &str, auth: Option<&str>| {
        let mut headers = Vec::new();
        if let Some(a) = auth {
            headers.push(("Authorization", a));
        }
        send("GET", &format!("{base}{path}"), &headers, Vec::new()).expect("request")
    };
    let sql = |db: &str| {
        format!(
            "/api/v3/query_sql?db={db}&q={}",
            urlencode("SELECT count(*) AS n FROM m")
        )
    };
    // No credentials: 401; the reader reads its database, not another.
    assert_eq!(get(&sql("db"), None).status, 401);
    let r = get(&sql("db"), Some(&basic("bob", "b")));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("\"n\":1"), "{}", r.body);
    let r = get(&sql("other"), Some(&basic("bob", "b")));
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("requires READ on other"), "{}", r.body);
    // A catalog named in the query is as closed as the header.
    let r = get(
        &format!(
            "/api/v3/query_sql?db=db&q={}",
            urlencode("SELECT count(*) FROM other.iox.m")
        ),
        Some(&basic("bob", "b")),
    );
    assert_ne!(r.status, 200, "{}", r.body);
    // InfluxQL over v3: the query authorizer's rules.
    let r = get(
        &format!("/api/v3/query_influxql?db=db&q={}", urlencode("SHOW USERS")),
        Some("Token bob:b"),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("requires admin privilege"), "{}", r.body);
    let r = get(
        &format!("/api/v3/query_influxql?db=db&q={}", urlencode("SHOW USERS")),
        Some("Token admin:pw"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // /metrics: for admins when auth is on.
    assert_eq!(get("/metrics", None).status, 401);
    assert_eq!(get("/metrics", Some(&basic("bob", "b"))).status, 403);
    let m = get("/metrics", Some(&basic("admin", "pw")));
    assert_eq!(m.status, 200, "{}", m.body);
    assert!(m.body.contains("fletch_raft_term"), "{}", m.body);
    // /debug/vars too (1.x serves it to anyone; Fletch answers nothing without credentials).
    assert_eq!(get("/debug/vars", None).status, 401);
    let r = get("/debug/vars", Some(&basic("bob", "b")));
    assert_eq!(r.status, 403);
    assert!(
        r.body.contains("/debug/vars requires admin privilege"),
        "{}",
        r.body
    );
    let v = get("/debug/vars", Some(&basic("admin", "pw")));
    assert_eq!(v.status, 200, "{}", v.body);
    assert!(v.body.contains("\"queryExecutor\""), "{}", v.body);
    // v2 write with a token, as the v2 client libraries send it.
    let w = send(
        "POST",
        &format!("{base}/api/v2/write?bucket=db"),
        &[("Authorization", "Token bob:b")],
        b"m v=2 2000000000\n".to_vec(),
    )
    .unwrap();
    assert_eq!(w.status, 403, "bob reads only: {}", w.body);
    let w = send(
        "POST",
        &format!("{base}/api/v2/write?bucket=db"),
        &[("Authorization", "Token admin:pw")],
        b"m v=2 2000000000\n".to_vec(),
    )
    .unwrap();
    assert_eq!(w.status, 204, "{}", w.body);
}

#[test]
fn flight_sql_clients_log_in_and_see_only_what_they_may_read() {
    let (fletch, _dir, _base) = fresh_with_admin();
    let script = r#"
import sys, json
import adbc_driver_flightsql.dbapi as flightsql
from adbc_driver_flightsql import DatabaseOptions
uri = "grpc://" + sys.argv[1]
out = {}
def attempt(name, user, password, db, sql):
    kwargs = {"db_kwargs": {DatabaseOptions.WITH_COOKIE_MIDDLEWARE.value: "false"}}
    if user is not None:
        kwargs["db_kwargs"]["username"] = user
        kwargs["db_kwargs"]["password"] = password
    if db is not None:
        kwargs["db_kwargs"]["adbc.flight.sql.rpc.call_header.database"] = db
    try:
        with flightsql.connect(uri, **kwargs) as conn:
            cur = conn.cursor()
            cur.execute(sql)
            out[name] = ["ok", cur.fetchall()]
    except Exception as e:
        out[name] = ["error", str(e)]
attempt("anonymous", None, None, "db", "SELECT count(*) FROM m")
attempt("wrong password", "bob", "nope", "db", "SELECT count(*) FROM m")
attempt("reader", "bob", "b", "db", "SELECT count(*) FROM m")
attempt("reader, other db", "bob", "b", "other", "SELECT count(*) FROM m")
attempt("reader, other catalog", "bob", "b", None, "SELECT count(*) FROM other.iox.m")
attempt("admin, other db", "admin", "pw", "other", "SELECT count(*) FROM m")
try:
    with flightsql.connect(uri, db_kwargs={"username": "bob", "password": "b"}) as conn:
        out["catalogs"] = ["ok", [c["catalog_name"] for c in conn.adbc_get_objects(depth="catalogs").read_all().to_pylist()]]
except Exception as e:
    out["catalogs"] = ["error", str(e)]
print(json.dumps(out, default=str))
"#;
    let v = fletch_tests::python_json(&["-c", script, &fletch.http]);
    let status = |k: &str| v[k][0].as_str().unwrap_or("").to_string();
    let text = |k: &str| v[k][1].to_string();
    assert_eq!(status("anonymous"), "error", "{v}");
    assert!(
        text("anonymous").contains("UNAUTHENTICATED")
            || text("anonymous").contains("Unauthenticated"),
        "{v}"
    );
    assert_eq!(status("wrong password"), "error", "{v}");
    assert!(
        text("wrong password").contains("authorization failed"),
        "{v}"
    );
    assert_eq!(status("reader"), "ok", "{v}");
    assert_eq!(v["reader"][1][0][0], 1, "{v}");
    assert_eq!(status("reader, other db"), "error", "{v}");
    assert!(
        text("reader, other db").contains("requires READ on other"),
        "{v}"
    );
    assert_eq!(status("reader, other catalog"), "error", "{v}");
    assert_eq!(status("admin, other db"), "ok", "{v}");
    assert_eq!(status("catalogs"), "ok", "{v}");
    assert_eq!(v["catalogs"][1], serde_json::json!(["db"]), "{v}");
}

/// Flight calls that carry their credentials each time rather than through a handshake: ADBC's
/// `authorization_header` (Basic, or a Bearer JWT) and influxdb3-python, which sends its token
/// as `Bearer` on every call; forged and expired JWTs and a wrong password are refused.
#[test]
fn flight_calls_carry_basic_or_bearer_credentials_on_each_call() {
    let (fletch, _dir, _base) = fresh_with_admin();
    let t = now();
    let good = jwt(
        "HS256",
        &format!(r#"{{"username":"bob","exp":{}}}"#, t + 3600),
        SECRET,
    );
    let forged = jwt(
        "HS256",
        &format!(r#"{{"username":"bob","exp":{}}}"#, t + 3600),
        "guess",
    );
    let expired = jwt(
        "HS256",
        &format!(r#"{{"username":"bob","exp":{}}}"#, t - 100),
        SECRET,
    );
    let script = r#"
import sys, json, base64
import adbc_driver_flightsql.dbapi as flightsql
from adbc_driver_flightsql import DatabaseOptions
from influxdb_client_3 import InfluxDBClient3
addr, good, forged, expired = sys.argv[1:5]
out = {}
def attempt(name, f):
    try:
        out[name] = ["ok", f()]
    except Exception as e:
        out[name] = ["error", str(e)]
def adbc(header, db="db"):
    kw = {
        DatabaseOptions.AUTHORIZATION_HEADER.value: header,
        DatabaseOptions.WITH_COOKIE_MIDDLEWARE.value: "false",
        "adbc.flight.sql.rpc.call_header.database": db,
    }
    with flightsql.connect("grpc://" + addr, db_kwargs=kw) as conn:
        cur = conn.cursor()
        cur.execute("SELECT count(*) FROM m")
        return cur.fetchall()
basic = lambda u, p: "Basic " + base64.b64encode(f"{u}:{p}".encode()).decode()
attempt("adbc basic", lambda: adbc(basic("bob", "b")))
attempt("adbc basic, other db", lambda: adbc(basic("bob", "b"), "other"))
attempt("adbc basic, wrong password", lambda: adbc(basic("bob", "nope")))
attempt("adbc bearer jwt", lambda: adbc("Bearer " + good))
attempt("adbc bearer forged", lambda: adbc("Bearer " + forged))
def v3(token):
    c = InfluxDBClient3(host="http://" + addr, token=token, database="db")
    return c.query("SELECT count(*) AS n FROM m").to_pylist()
attempt("influxdb3 jwt", lambda: v3(good))
attempt("influxdb3 forged", lambda: v3(forged))
attempt("influxdb3 expired", lambda: v3(expired))
print(json.dumps(out, default=str))
"#;
    let v = fletch_tests::python_json(&["-c", script, &fletch.http, &good, &forged, &expired]);
    let ok = |k: &str| {
        assert_eq!(v[k][0], "ok", "{k}: {v}");
        v[k][1].clone()
    };
    let refused = |k: &str, why: &str| {
        assert_eq!(v[k][0], "error", "{k}: {v}");
        let text = v[k][1].as_str().unwrap_or("");
        assert!(text.contains(why), "{k}: {text}");
    };
    assert_eq!(ok("adbc basic"), serde_json::json!([[1]]));
    assert_eq!(ok("adbc bearer jwt"), serde_json::json!([[1]]));
    assert_eq!(ok("influxdb3 jwt"), serde_json::json!([{"n": 1}]));
    refused("adbc basic, other db", "requires READ on other");
    refused("adbc basic, wrong password", "authorization failed");
    refused("adbc bearer forged", "signature is invalid");
    refused("influxdb3 forged", "signature is invalid");
    refused("influxdb3 expired", "Token is expired");
}

#[test]
fn the_shells_log_in_with_username_and_password() {
    let (fletch, _dir, _base) = fresh_with_admin();
    let (host, port) = fletch.http.split_once(':').unwrap();
    let mut shells = vec![fletch_tests::bin("fletch").display().to_string()];
    if std::path::Path::new("/usr/bin/influx").exists() {
        shells.push("/usr/bin/influx".into());
    }
    for shell in shells {
        let run = |args: &[&str]| {
            let out = std::process::Command::new(&shell)
                .args(["-host", host, "-port", port])
                .args(args)
                .output()
                .expect("shell");
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        };
        let ok = run(&[
            "-username",
            "bob",
            "-password",
            "b",
            "-execute",
            "SHOW DATABASES",
        ]);
        assert!(ok.contains("db") && !ok.contains("other"), "{shell}: {ok}");
        let bad = run(&[
            "-username",
            "bob",
            "-password",
            "x",
            "-execute",
            "SHOW DATABASES",
        ]);
        assert!(bad.contains("authorization failed"), "{shell}: {bad}");
        let none = run(&["-execute", "SHOW DATABASES"]);
        assert!(
            none.contains("unable to parse authentication credentials"),
            "{shell}: {none}"
        );
    }
}

#[test]
fn users_live_in_the_raft_catalog_so_every_node_agrees() {
    use fletch_tests::cluster::Node;
    let root = tempfile::tempdir().unwrap();
    let env = vec![("FLETCH_HTTP_AUTH_ENABLED", "true")];
    let mut a = Node::new(root.path(), "a", true);
    a.env = env.clone();
    a.start(&[]);
    let mut b = Node::new(root.path(), "b", false);
    b.env = env;
    b.start(&[&a.meta_http.clone()]);
    let ask = |node: &Node, stmt: &str, auth: Option<String>| run(&node.url(), &q(stmt, "", auth));
    // The first admin, created through the node without data.
    let r = ask(
        &b,
        "CREATE USER admin WITH PASSWORD 'pw' WITH ALL PRIVILEGES",
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = ask(
        &b,
        "CREATE DATABASE db; CREATE USER bob WITH PASSWORD 'b'; GRANT READ ON db TO bob",
        Some(basic("admin", "pw")),
    );
    assert!(r.status == 200 && !r.body.contains("error"), "{}", r.body);
    // The other node knows them as soon as its catalog has applied the change.
    fletch_tests::wait_for("bob on node a", std::time::Duration::from_secs(10), || {
        let r = ask(&a, "SHOW DATABASES", Some(basic("bob", "b")));
        (r.status == 200 && r.body.contains("\"db\"")).then_some(())
    });
    assert_eq!(ask(&a, "SHOW DATABASES", None).status, 401);
    assert_eq!(ask(&a, "SHOW USERS", Some(basic("bob", "b"))).status, 403);
    // A password changed on one node: the old one stops working on the other.
    const NEW: &str = "Zq9-distinctive-password";
    let r = ask(
        &a,
        &format!("SET PASSWORD FOR bob = '{NEW}'"),
        Some(basic("admin", "pw")),
    );
    assert!(r.status == 200 && !r.body.contains("error"), "{}", r.body);
    fletch_tests::wait_for(
        "the new password on node b",
        std::time::Duration::from_secs(10),
        || (ask(&b, "SHOW DATABASES", Some(basic("bob", NEW))).status == 200).then_some(()),
    );
    assert_eq!(
        ask(&b, "SHOW DATABASES", Some(basic("bob", "b"))).status,
        401
    );
    // Only bcrypt hashes are kept: no file of either node holds the password; the Raft log
    // holds hashes.
    for node in [&a, &b] {
        let files: Vec<Vec<u8>> = walk(&node.dir)
            .iter()
            .map(|p| std::fs::read(p).unwrap_or_default())
            .collect();
        let holds = |needle: &[u8]| {
            files
                .iter()
                .any(|f| f.windows(needle.len()).any(|w| w == needle))
        };
        assert!(!holds(NEW.as_bytes()), "the password is on disk");
        assert!(holds(b"$2b$10$"), "bcrypt hashes are kept");
    }
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}
