//! A cluster of `fletchd` processes on loopback, node by node: fixed addresses and
//! directories, so that a node restarts as itself. Raft runs with short timeouts here
//! (heartbeat 100ms, election 500ms, commit 2s, standby promotion after 2s, catch-up on start
//! at most 3s) so that deadlines
//! of a few election timeouts stay short.

use std::path::PathBuf;

use serde_json::Value;

use crate::http::{query, send};
use crate::{Fletchd, fixed_port};

pub const RAFT_ENV: &[(&str, &str)] = &[
    ("FLETCH_META_HEARTBEAT_INTERVAL", "100ms"),
    ("FLETCH_META_ELECTION_TIMEOUT", "500ms"),
    ("FLETCH_META_COMMIT_TIMEOUT", "2s"),
    ("FLETCH_META_PROMOTE_AFTER", "2s"),
    ("FLETCH_META_CATCH_UP_TIMEOUT", "3s"),
];

/// One node's fixed addresses and directory, so that it restarts as itself.
pub struct Node {
    pub dir: PathBuf,
    pub http: String,
    pub meta_http: String,
    pub tcp: String,
    pub data: bool,
    pub meta: bool,
    pub env: Vec<(&'static str, &'static str)>,
    pub proc: Option<Fletchd>,
}

impl Node {
    pub fn new(root: &std::path::Path, name: &str, data: bool) -> Self {
        Self {
            dir: root.join(name),
            http: format!("127.0.0.1:{}", fixed_port()),
            meta_http: format!("127.0.0.1:{}", fixed_port()),
            tcp: format!("127.0.0.1:{}", fixed_port()),
            data,
            meta: true,
            env: Vec::new(),
            proc: None,
        }
    }

    pub fn start(&mut self, join: &[&str]) {
        let join = join.join(",");
        let mut args = vec![
            "--http-bind-address",
            &self.http,
            "--meta-http-bind-address",
            &self.meta_http,
            "--meta-bind-address",
            &self.tcp,
        ];
        if !join.is_empty() {
            args.extend(["-join", &join]);
        }
        let mut env = RAFT_ENV.to_vec();
        env.extend(self.env.iter().copied());
        if !self.data {
            env.push(("FLETCH_DATA_ENABLED", "false"));
        }
        if !self.meta {
            env.push(("FLETCH_META_ENABLED", "false"));
        }
        self.proc = Some(Fletchd::launch(&self.dir, &args, &env));
    }

    pub fn kill(&mut self) {
        if let Some(p) = self.proc.take() {
            p.kill9();
        }
    }

    /// SIGTERM, and the clean exit it must give.
    pub fn stop(&mut self) {
        if let Some(p) = self.proc.take() {
            assert!(p.terminate().success());
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.http)
    }

    pub fn q(&self, q: &str) -> Value {
        let r = query(&self.url(), q, "");
        assert_eq!(r.status, 200, "{q}: {}", r.body);
        serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{q}: {e}: {}", r.body))
    }

    pub fn status(&self) -> Value {
        let r = send(
            "GET",
            &format!("http://{}/status", self.meta_http),
            &[],
            vec![],
        )
        .expect("GET /status");
        serde_json::from_str(&r.body).expect("status JSON")
    }

    pub fn log(&self) -> String {
        self.proc
            .as_ref()
            .map(Fletchd::log_text)
            .unwrap_or_default()
    }
}

pub fn error_of(v: &Value) -> Option<String> {
    v["results"][0]["error"].as_str().map(str::to_string)
}

/// Three data nodes, each a meta node too, started with `env` and joined, all up.
pub fn three_data_nodes(
    root: &std::path::Path,
    env: Vec<(&'static str, &'static str)>,
) -> Vec<Node> {
    let mut nodes: Vec<Node> = (1..=3)
        .map(|i| {
            let mut n = Node::new(root, &format!("n{i}"), true);
            n.env = env.clone();
            n
        })
        .collect();
    nodes[0].start(&[]);
    let first = nodes[0].meta_http.clone();
    nodes[1].start(&[&first]);
    nodes[2].start(&[&first]);
    crate::wait_for(
        "three data nodes",
        std::time::Duration::from_secs(30),
        || {
            let v = nodes[0].q("SHOW SERVERS");
            (v["results"][0]["series"][0]["values"].as_array()?.len() == 3).then_some(())
        },
    );
    nodes
}

/// Three data nodes (each a meta node too) and a fourth node without data (a meta node) that
/// joined them, all up: the cluster the distributed-query tests send their queries through.
pub fn three_data_nodes_and_a_querier(
    root: &std::path::Path,
    querier_env: Vec<(&'static str, &'static str)>,
) -> (Vec<Node>, Node) {
    let mut nodes: Vec<Node> = (1..=3)
        .map(|i| Node::new(root, &format!("n{i}"), true))
        .collect();
    nodes[0].start(&[]);
    let first = nodes[0].meta_http.clone();
    nodes[1].start(&[&first]);
    nodes[2].start(&[&first]);
    let mut q = Node::new(root, "q", false);
    q.env = querier_env;
    q.start(&[&first]);
    crate::wait_for(
        "three data nodes",
        std::time::Duration::from_secs(30),
        || {
            let v = q.q("SHOW SERVERS");
            (v["results"][0]["series"][0]["values"].as_array()?.len() == 3).then_some(())
        },
    );
    (nodes, q)
}
