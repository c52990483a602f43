//! The parser against 1.x's texts: errors, round trips of every statement.

use super::*;

fn err(q: &str) -> String {
    parse_query(q).unwrap_err().to_string()
}

/// Texts checked against InfluxDB 1.6.7.
#[test]
fn errors_read_like_1x() {
    assert_eq!(
        err("CREATE"),
        "found EOF, expected CONTINUOUS, DATABASE, USER, RETENTION, SUBSCRIPTION at line 1, char 8"
    );
    assert_eq!(
        err("SHOW FOO"),
        format!("found FOO, expected {SHOW_NEXT} at line 1, char 6")
    );
    assert_eq!(
        err("DROP DATABASE"),
        "found EOF, expected identifier at line 1, char 15"
    );
    assert_eq!(
        err("SHOW RETENTION"),
        "found EOF, expected POLICIES at line 1, char 16"
    );
    assert_eq!(
        err("SHOW DATABASES extra"),
        "found extra, expected ; at line 1, char 16"
    );
    assert_eq!(
        err("CREATE DATABASE x WITH"),
        "found EOF, expected DURATION, NAME, REPLICATION, SHARD at line 1, char 24"
    );
    assert_eq!(
        err("CREATE DATABASE x WITH DURATION"),
        "found EOF, expected duration at line 1, char 33"
    );
    assert_eq!(
        err("CREATE DATABASE x WITH DURATION 1x"),
        "invalid duration at line 1, char 33"
    );
    // After `=~`, `/*` opens a regex, not a comment (1.x's scanner).
    assert_eq!(
        err("SELECT f FROM m WHERE host =~ /*a/"),
        "error parsing regexp: missing argument to repetition operator: `*` at line 1, char 30"
    );
    assert_eq!(err("SELECT f FROM m GROUP BY time(1x)"), "invalid duration");
    assert_eq!(
        err("CREATE DATABASE x WITH REPLICATION 0"),
        "invalid value 0: must be 1 <= n <= 2147483647 at line 1, char 36"
    );
    assert_eq!(
        err("CREATE DATABASE x WITH REPLICATION abc"),
        "found abc, expected integer at line 1, char 36"
    );
    assert_eq!(
        err("CREATE DATABASE 'x'"),
        "found x, expected identifier at line 1, char 16"
    );
    assert_eq!(
        err("CREATE DATABASE select"),
        "found SELECT, expected identifier at line 1, char 17"
    );
    assert_eq!(
        err("SHOW DATABASES; SHOW FOO"),
        format!("found FOO, expected {SHOW_NEXT} at line 1, char 22")
    );
    assert_eq!(
        err("SHOW DATABASES\nSHOW FOO"),
        "found SHOW, expected ; at line 2, char 1"
    );
    assert_eq!(
        err("CREATE DATABASE q WITH NAME r DURATION 1d"),
        "found DURATION, expected ; at line 1, char 31"
    );
    assert_eq!(
        err("SELEC 1"),
        format!("found SELEC, expected {STATEMENT_START} at line 1, char 1")
    );
}

#[test]
fn select_errors_read_like_1x() {
    assert_eq!(
        err("SELECT"),
        "found EOF, expected identifier, string, number, bool at line 1, char 8"
    );
    assert_eq!(
        err("SELECT value"),
        "found EOF, expected FROM at line 1, char 14"
    );
    assert_eq!(
        err("SELECT value FROM"),
        "found EOF, expected identifier at line 1, char 19"
    );
    assert_eq!(
        err("SELECT value FROM m WHERE"),
        "found EOF, expected identifier, string, number, bool at line 1, char 27"
    );
    assert_eq!(
        err("SELECT value FROM m GROUP BY"),
        "found EOF, expected identifier, string, number, bool at line 1, char 30"
    );
    assert_eq!(
        err("SELECT value FROM m LIMIT x"),
        "found x, expected integer at line 1, char 27"
    );
    assert_eq!(
        err("SELECT (value FROM m"),
        "found FROM, expected ) at line 1, char 15"
    );
    assert_eq!(
        err("SELECT value FROM m GROUP BY time(1m"),
        "found EOF, expected ) at line 1, char 37"
    );
    assert_eq!(
        err("SELECT 1"),
        "found EOF, expected FROM at line 1, char 9"
    );
    assert_eq!(
        err("SELECT usage + FROM cpu"),
        "found FROM, expected identifier, string, number, bool at line 1, char 16"
    );
    assert_eq!(
        err("SELECT value FROM m LIMIT 1 OFFSET"),
        "found EOF, expected integer at line 1, char 36"
    );
    assert_eq!(
        err("SELECT value FROM m WHERE a ="),
        "found EOF, expected identifier, string, number, bool at line 1, char 30"
    );
    // Right after a call's `(` or `,`, 1.x names the character after the end (observed).
    for (q, at) in [
        ("SELECT mean(", 14),
        ("SELECT mean( ", 14),
        ("SELECT mean(f,", 16),
        ("SELECT top(f, ", 15),
        ("SELECT time(", 14),
        ("SELECT (", 9),
        ("SELECT mean(f) FROM m GROUP BY time(", 38),
        ("SELECT mean(f) FROM m GROUP BY time(1m, ", 41),
        ("SELECT mean(f) FROM m GROUP BY time(1m) fill(", 47),
    ] {
        assert_eq!(
            err(q),
            format!("found EOF, expected identifier, string, number, bool at line 1, char {at}"),
            "{q}"
        );
    }
    // A quote inside a regex does not start a string.
    let s = select("SELECT v FROM m WHERE host =~ /it's/ AND region = 'x'");
    assert_eq!(
        s.condition.unwrap().to_string(),
        "host =~ /it's/ AND region = 'x'"
    );
}

fn select(q: &str) -> SelectStatement {
    match parse_query(q).unwrap().pop().unwrap() {
        Statement::Select(s) => *s,
        other => panic!("{other:?}"),
    }
}

#[test]
fn select_clauses_round_trip() {
    for q in [
        "SELECT mean(usage) AS m, max(idle) FROM db.rp.cpu WHERE time > now() - 1h AND host =~ /a\\/b/ GROUP BY time(10m, 1m), host fill(0) ORDER BY time DESC LIMIT 10 OFFSET 2 SLIMIT 3 SOFFSET 1 TZ('Europe/Oslo')",
        "SELECT * FROM /cp.*/",
        "SELECT usage::field, host::tag FROM db..cpu",
        "SELECT usage * 2 + 1 FROM cpu WHERE (host = 'a' OR host = 'b') AND usage > -1.5",
        "SELECT count(*) INTO other FROM cpu GROUP BY *",
        "SELECT max(v) FROM (SELECT mean(usage) AS v FROM cpu GROUP BY time(1m)), cpu",
    ] {
        let s = select(q);
        let again = select(&s.to_string());
        assert_eq!(s, again, "{q} -> {s}");
    }
    let s = select("SELECT a + b * c - d FROM m");
    assert_eq!(s.fields[0].expr.to_string(), "a + b * c - d");
    let Expr::Binary { op, .. } = &s.fields[0].expr else {
        panic!()
    };
    assert_eq!(*op, BinaryOp::Sub, "left-associative, * binds tighter");
    let s = select("SELECT v FROM m WHERE a = 1 OR b = 2 AND c = 3");
    let Some(Expr::Binary {
        op: BinaryOp::Or, ..
    }) = &s.condition
    else {
        panic!("{:?}", s.condition)
    };
    let s = select("SELECT v FROM db.rp.m");
    let Source::Measurement(m) = &s.sources[0] else {
        panic!()
    };
    assert_eq!(
        (
            m.database.as_deref(),
            m.retention_policy.as_deref(),
            m.name.as_deref()
        ),
        (Some("db"), Some("rp"), Some("m"))
    );
    let s = select("SELECT v FROM rp.m");
    let Source::Measurement(m) = &s.sources[0] else {
        panic!()
    };
    assert_eq!(
        (m.database.as_deref(), m.retention_policy.as_deref()),
        (None, Some("rp"))
    );
    let s = select("SELECT v FROM m WHERE host = $h");
    assert_eq!(s.condition.unwrap().to_string(), "host = $h");
}

#[test]
fn show_statements_round_trip() {
    for q in [
        "SHOW TAG KEYS ON db FROM cpu, mem WHERE host = 'a' LIMIT 1 OFFSET 2",
        "SHOW TAG VALUES FROM cpu WITH KEY IN (host, region) WHERE host =~ /a/",
        "SHOW TAG VALUES WITH KEY = host",
        "SHOW TAG VALUES WITH KEY !~ /h/",
        "SHOW FIELD KEYS FROM cpu",
        "SHOW SERIES FROM cpu WHERE host = 'a' LIMIT 2",
        "SHOW MEASUREMENTS WITH MEASUREMENT =~ /c.*/ WHERE host = 'b'",
        "SHOW SERIES CARDINALITY",
        "SHOW SERIES EXACT CARDINALITY ON db FROM cpu WHERE host = 'a'",
        "SHOW MEASUREMENT CARDINALITY",
        "SHOW MEASUREMENT EXACT CARDINALITY ON db FROM /c.*/ WHERE host = 'b'",
        "SHOW TAG KEY CARDINALITY FROM cpu",
        "SHOW TAG VALUES EXACT CARDINALITY FROM cpu WITH KEY = host",
        "SHOW FIELD KEY CARDINALITY ON db",
        "SHOW SHARDS",
        "SHOW SHARD GROUPS",
        "SHOW SERVERS",
        "SHOW META STATUS",
        "DROP META SERVER 3",
        "DROP DATA SERVER 4",
        "DROP DATA SERVER 4 FORCE",
        "SHOW QUERIES",
        "KILL QUERY 36",
        "KILL QUERY 36 ON \"localhost:8088\"",
        "SELECT mean(v) INTO db.rp.:MEASUREMENT FROM /c.*/ GROUP BY time(1m), *",
        "SELECT v INTO rp.:MEASUREMENT FROM c",
        "CREATE RETENTION POLICY r ON db DURATION 1d REPLICATION 1 SHARD DURATION 1h DEFAULT",
        "ALTER RETENTION POLICY r ON db DURATION 3h DEFAULT",
        "DROP RETENTION POLICY r ON db",
        "DROP MEASUREMENT cpu",
        "DROP SERIES FROM cpu WHERE host = 'a'",
        "DELETE FROM cpu, /m.*/ WHERE time < 60000000000",
        "CREATE USER bob WITH PASSWORD [REDACTED]",
        "CREATE USER \"a b\" WITH PASSWORD [REDACTED] WITH ALL PRIVILEGES",
        "DROP USER bob",
        "SET PASSWORD FOR bob = [REDACTED]",
        "GRANT READ ON db TO bob",
        "GRANT ALL PRIVILEGES ON db TO bob",
        "GRANT ALL PRIVILEGES TO bob",
        "REVOKE WRITE ON db FROM bob",
        "REVOKE ALL PRIVILEGES FROM bob",
        "SHOW USERS",
        "SHOW GRANTS FOR bob",
    ] {
        // Passwords are printed as 1.x prints them: redacted.
        let q = &q.replace("[REDACTED]", "'secret'");
        let q = q.as_str();
        let s = parse_query(q).unwrap().pop().unwrap();
        assert_eq!(s.to_string(), q.replace("'secret'", "[REDACTED]"));
    }
    assert_eq!(
        parse_query("GRANT ALL ON db TO bob").unwrap()[0].to_string(),
        "GRANT ALL PRIVILEGES ON db TO bob"
    );
    // 1.6.7's texts for bad user statements.
    for (q, want) in [
        (
            "GRANT READ TO bob",
            "found TO, expected ON at line 1, char 12",
        ),
        (
            "GRANT ALL ON",
            "found EOF, expected identifier at line 1, char 14",
        ),
        (
            "GRANT ALL bob",
            "found bob, expected ON, TO at line 1, char 11",
        ),
        (
            "GRANT x ON db TO bob",
            "found x, expected READ, WRITE, ALL [PRIVILEGES] at line 1, char 7",
        ),
        (
            "REVOKE ALL bob",
            "found bob, expected ON, FROM at line 1, char 12",
        ),
        (
            "REVOKE READ ON db TO bob",
            "found TO, expected FROM at line 1, char 19",
        ),
        (
            "CREATE USER bob",
            "found EOF, expected WITH at line 1, char 17",
        ),
        (
            "CREATE USER bob WITH PASSWORD x",
            "found x, expected string at line 1, char 31",
        ),
        (
            "CREATE USER bob WITH PASSWORD 'x' WITH READ",
            "found READ, expected ALL at line 1, char 40",
        ),
        (
            "CREATE USER \"a b\" WITH PASSWORD 'x' WITH ALL",
            "found EOF, expected PRIVILEGES at line 1, char 46",
        ),
        (
            "SET PASSWORD bob = 'x'",
            "found bob, expected FOR at line 1, char 14",
        ),
        (
            "SET PASSWORD FOR bob 'x'",
            "found x, expected = at line 1, char 21",
        ),
        (
            "SET PASSWORD FOR bob = x",
            "found x, expected string at line 1, char 24",
        ),
        (
            "SHOW GRANTS bob",
            "found bob, expected FOR at line 1, char 13",
        ),
        (
            "DROP USER",
            "found EOF, expected identifier at line 1, char 11",
        ),
    ] {
        assert_eq!(err(q), want, "{q}");
    }
    assert_eq!(
        parse_query("KILL QUERY 7 ON 'h:8088'")
            .unwrap()
            .pop()
            .unwrap()
            .to_string(),
        "KILL QUERY 7 ON \"h:8088\""
    );
    assert_eq!(
        err("KILL QUERY x"),
        "found x, expected integer at line 1, char 12"
    );
    assert_eq!(
        err("DROP META SERVER x"),
        "found x, expected integer at line 1, char 18"
    );
    assert_eq!(
        err("DROP DATA nodes"),
        "found nodes, expected SERVER at line 1, char 11"
    );
    assert_eq!(
        err("SHOW TAG VALUES"),
        "found EOF, expected WITH at line 1, char 17"
    );
    assert_eq!(
        err("DELETE"),
        "found EOF, expected FROM, WHERE at line 1, char 8"
    );
    assert_eq!(
        err("CREATE RETENTION POLICY r4 ON sel DURATION 1h"),
        "found EOF, expected REPLICATION at line 1, char 46"
    );
    assert_eq!(
        err("ALTER RETENTION POLICY autogen ON sel"),
        "found EOF, expected DURATION, REPLICATION, SHARD, DEFAULT at line 1, char 39"
    );
}

#[test]
fn statements() {
    assert_eq!(
        parse_query("show databases;;").unwrap(),
        vec![Statement::ShowDatabases]
    );
    assert_eq!(parse_query(";").unwrap(), vec![]);
    assert_eq!(
        parse_query(
            "CREATE DATABASE \"my db\" WITH DURATION 1d REPLICATION 1 SHARD DURATION 1h NAME r1"
        )
        .unwrap(),
        vec![Statement::CreateDatabase {
            name: "my db".into(),
            rp: Some(RetentionPolicyClause {
                duration: Some(86_400_000_000_000),
                replication: Some(1),
                shard_duration: Some(3_600_000_000_000),
                name: Some("r1".into()),
            }),
        }]
    );
    assert_eq!(
        parse_query("SHOW MEASUREMENTS ON d LIMIT 2 OFFSET 1").unwrap(),
        vec![Statement::ShowMeasurements {
            database: Some("d".into()),
            with: None,
            condition: None,
            limit: Some(2),
            offset: Some(1)
        }]
    );
    let s = parse_query("create database x with duration INF").unwrap();
    assert_eq!(s[0].to_string(), "CREATE DATABASE x WITH DURATION 0s");
    assert_eq!(
        parse_query("DROP DATABASE \"select\"").unwrap()[0].to_string(),
        "DROP DATABASE \"select\""
    );
}

#[test]
fn show_stats_takes_an_optional_module() {
    let one = |q: &str| parse_query(q).unwrap().remove(0);
    assert_eq!(one("SHOW STATS"), Statement::ShowStats { module: None });
    let s = one("show stats for 'hh_processor'");
    assert_eq!(
        s,
        Statement::ShowStats {
            module: Some("hh_processor".into())
        }
    );
    assert_eq!(s.to_string(), "SHOW STATS FOR 'hh_processor'");
    assert_eq!(
        err("SHOW STATS FOR hh"),
        "found hh, expected string at line 1, char 16"
    );
}

#[test]
fn show_diagnostics_takes_an_optional_module() {
    let one = |q: &str| parse_query(q).unwrap().remove(0);
    assert_eq!(
        one("SHOW DIAGNOSTICS"),
        Statement::ShowDiagnostics { module: None }
    );
    let s = one("show diagnostics for 'build'");
    assert_eq!(
        s,
        Statement::ShowDiagnostics {
            module: Some("build".into())
        }
    );
    assert_eq!(s.to_string(), "SHOW DIAGNOSTICS FOR 'build'");
    assert_eq!(
        err("SHOW DIAGNOSTICS FOR build"),
        "found build, expected string at line 1, char 22"
    );
}

/// `CREATE|DROP|SHOW CONTINUOUS QUERY`: texts and positions as InfluxDB 1.6.7 answered them.
#[test]
fn continuous_queries_parse_and_refuse_like_1x() {
    let cases = [
        (
            "CREATE CONTINUOUS QUERY",
            "found EOF, expected identifier at line 1, char 25",
        ),
        (
            "CREATE CONTINUOUS cq",
            "found cq, expected QUERY at line 1, char 19",
        ),
        (
            "CREATE CONTINUOUS QUERY c ON p BEGIN mean END",
            "found mean, expected SELECT at line 1, char 38",
        ),
        (
            "CREATE CONTINUOUS QUERY c ON q BEGIN SELECT mean(f) INTO m5 FROM m GROUP BY time(1m)",
            "found EOF, expected END at line 1, char 85",
        ),
        (
            "DROP CONTINUOUS QUERY c",
            "found EOF, expected ON at line 1, char 25",
        ),
        (
            "SHOW CONTINUOUS",
            "found EOF, expected QUERIES at line 1, char 17",
        ),
        (
            "CREATE CONTINUOUS QUERY c ON q RESAMPLE EVERY 2m FOR 1m BEGIN SELECT mean(f) INTO m5 FROM m GROUP BY time(1m) END",
            "FOR duration must be >= GROUP BY time duration: must be a minimum of 2m, got 1m",
        ),
        (
            "CREATE CONTINUOUS QUERY c ON q RESAMPLE EVERY 1m FOR 30s BEGIN SELECT mean(f) INTO m5 FROM m GROUP BY time(1m) END",
            "FOR duration must be >= GROUP BY time duration: must be a minimum of 1m, got 30s",
        ),
        (
            "CREATE CONTINUOUS QUERY c ON q BEGIN SELECT mean(f) INTO m5 FROM m GROUP BY host END",
            "found host, expected GROUP BY time(...) at line 1, char 77",
        ),
        (
            "CREATE CONTINUOUS QUERY c ON q BEGIN SELECT mean(f) INTO m5 FROM m GROUP BY time(0s) END",
            "found ), expected GROUP BY time(...) at line 1, char 84",
        ),
        (
            "CREATE CONTINUOUS QUERY c ON q BEGIN SELECT mean(f) INTO m5 FROM m LIMIT 2 END",
            "found 2, expected GROUP BY time(...) at line 1, char 74",
        ),
        (
            "CREATE CONTINUOUS QUERY cq6 ON p BEGIN SELECT mean(f) INTO m5 FROM m END",
            "found m, expected GROUP BY time(...) at line 1, char 68",
        ),
        (
            "CREATE CONTINUOUS QUERY cq6 ON p BEGIN SELECT mean(f) FROM m GROUP BY time(1m) END",
            "found FROM, expected INTO at line 1, char 55",
        ),
        (
            "CREATE CONTINUOUS QUERY c ON q BEGIN SELECT mean(f) INTO m5 FROM m WHERE GROUP BY time(1m) END",
            "found GROUP, expected identifier, string, number, bool at line 1, char 74",
        ),
        (
            "CREATE CONTINUOUS QUERY c ON q RESAMPLE EVERY 0s FOR 0s BEGIN SELECT mean(f) INTO m5 FROM m GROUP BY time(1m) END",
            "found BEGIN, expected EVERY, FOR at line 1, char 57",
        ),
        (
            "CREATE CONTINUOUS QUERY c ON q RESAMPLE EVERY 1x BEGIN SELECT mean(f) INTO m5 FROM m GROUP BY time(1m) END",
            "invalid duration at line 1, char 47",
        ),
        (
            "CREATE CONTINUOUS QUERY c ON q RESAMPLE EVERY 10 BEGIN SELECT mean(f) INTO m5 FROM m GROUP BY time(1m) END",
            "found 10, expected duration at line 1, char 47",
        ),
        (
            "CREATE CONTINUOUS QUERY c ON p RESAMPLE FOR 1h EVERY 1m BEGIN SELECT mean(f) INTO m5 FROM m GROUP BY time(1m) END",
            "found EVERY, expected BEGIN at line 1, char 48",
        ),
        (
            "CREATE CONTINUOUS QUERY c BEGIN SELECT mean(f) INTO m5 FROM m GROUP BY time(1m) END",
            "found BEGIN, expected ON at line 1, char 27",
        ),
    ];
    for (q, want) in cases {
        assert_eq!(err(q), want, "{q}");
    }
    // Accepted as 1.6.7 accepts them (a raw query is refused only when it runs), and printed
    // back as they came.
    for q in [
        "CREATE CONTINUOUS QUERY cq2 ON p RESAMPLE EVERY 2m FOR 5m BEGIN SELECT mean(f) AS mf, max(g) INTO p.autogen.m3 FROM p.autogen.m WHERE host = 'a' GROUP BY time(1m, 10s), host fill(0) END",
        "CREATE CONTINUOUS QUERY cq3 ON p RESAMPLE FOR 5m BEGIN SELECT count(*) INTO p.autogen.:MEASUREMENT FROM p.autogen./.*/ GROUP BY time(1m), * END",
        "CREATE CONTINUOUS QUERY cq6 ON p BEGIN SELECT f INTO p.autogen.m5 FROM p.autogen.m GROUP BY time(1m) END",
        "CREATE CONTINUOUS QUERY \"c 8\" ON p BEGIN SELECT mean(\"f x\") INTO p.autogen.\"m 5\" FROM p.autogen.m GROUP BY time(1m) END",
        "CREATE CONTINUOUS QUERY c15 ON p BEGIN SELECT mean(f) INTO p.autogen.m5 FROM p.autogen.m GROUP BY time(1m) TZ('Europe/Paris') END",
        "CREATE CONTINUOUS QUERY c6 ON p BEGIN SELECT mean(f) INTO p.autogen.m5 FROM (SELECT f FROM p.autogen.m) GROUP BY time(1m) END",
        "DROP CONTINUOUS QUERY \"c 8\" ON p",
        "SHOW CONTINUOUS QUERIES",
    ] {
        let parsed = parse_query(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        assert_eq!(parsed[0].to_string(), q);
    }
}
