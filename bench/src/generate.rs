//! TSBS "devops cpu-only" data: measurement `cpu`, ten tags per host, ten `usage_*` fields,
//! one row per host every 10 seconds, each field a random walk bounded to [0, 100].

use std::io::Write;

use crate::Rng;

pub const FIELDS: [&str; 10] = [
    "usage_user",
    "usage_system",
    "usage_idle",
    "usage_nice",
    "usage_iowait",
    "usage_irq",
    "usage_softirq",
    "usage_steal",
    "usage_guest",
    "usage_guest_nice",
];

const REGIONS: [&str; 9] = [
    "us-east-1",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "sa-east-1",
];
const OS: [&str; 3] = ["Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10"];
const ARCH: [&str; 2] = ["x64", "x86"];
const TEAM: [&str; 4] = ["SF", "NYC", "LON", "CHI"];
const ENVIRONMENT: [&str; 3] = ["production", "staging", "test"];

/// The interval between two rows of one host.
pub const INTERVAL: i64 = 10_000_000_000;

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Number of hosts.
    pub scale: u64,
    /// First timestamp, nanoseconds.
    pub start: i64,
    /// Length of the data set, nanoseconds.
    pub duration: i64,
    pub seed: u64,
    /// The first host's number: `host_{offset}` onwards (0 for a data set; a load of other
    /// hosts over the same times is a backfill of new series).
    pub host_offset: u64,
}

impl Spec {
    pub fn rows(&self) -> u64 {
        self.scale * (self.duration / INTERVAL).max(0) as u64
    }
}

pub fn hostname(i: u64) -> String {
    format!("host_{i}")
}

/// The data set's lines in order (time-major like TSBS), made one at a time: a load can stream
/// a data set larger than memory.
pub struct Lines {
    hosts: Vec<String>,
    values: Vec<[f64; 10]>,
    rng: Rng,
    start: i64,
    steps: i64,
    step: i64,
    host: usize,
}

impl Lines {
    pub fn new(spec: &Spec) -> Self {
        let mut rng = Rng::new(spec.seed);
        let hosts: Vec<String> = (0..spec.scale)
            .map(|i| {
                let region = REGIONS[rng.below(REGIONS.len() as u64) as usize];
                let dc = ["a", "b", "c"][rng.below(3) as usize];
                format!(
                    "cpu,hostname={},region={region},datacenter={region}{dc},rack={},os={},arch={},team={},service={},service_version={},service_environment={}",
                    hostname(i + spec.host_offset),
                    rng.below(100),
                    OS[rng.below(3) as usize],
                    ARCH[rng.below(2) as usize],
                    TEAM[rng.below(4) as usize],
                    rng.below(20),
                    rng.below(2),
                    ENVIRONMENT[rng.below(3) as usize],
                )
            })
            .collect();
        let values: Vec<[f64; 10]> = (0..spec.scale)
            .map(|_| std::array::from_fn(|_| rng.unit() * 100.0))
            .collect();
        Self {
            hosts,
            values,
            rng,
            start: spec.start,
            steps: (spec.duration / INTERVAL).max(0),
            step: 0,
            host: 0,
        }
    }

    /// Appends the next line (with its newline) to `line`; `false` at the end of the set.
    pub fn next_into(&mut self, line: &mut String) -> bool {
        use std::fmt::Write as _;
        if self.host == self.hosts.len() {
            self.host = 0;
            self.step += 1;
        }
        if self.step >= self.steps || self.hosts.is_empty() {
            return false;
        }
        let h = self.host;
        self.host += 1;
        let t = self.start + self.step * INTERVAL;
        line.push_str(&self.hosts[h]);
        for (f, name) in FIELDS.iter().enumerate() {
            let v = &mut self.values[h][f];
            *v = (*v + (self.rng.unit() - 0.5) * 2.0).clamp(0.0, 100.0);
            line.push(if f == 0 { ' ' } else { ',' });
            line.push_str(name);
            line.push('=');
            // Two decimals, as a real collector reports percentages.
            let _ = write!(line, "{:.2}", v);
        }
        let _ = writeln!(line, " {t}");
        true
    }
}

/// Writes the data set as line protocol (nanosecond timestamps), time-major like TSBS.
pub fn write_lines(spec: &Spec, out: &mut impl Write) -> std::io::Result<u64> {
    let mut lines = Lines::new(spec);
    let mut rows = 0u64;
    let mut line = String::with_capacity(512);
    loop {
        line.clear();
        if !lines.next_into(&mut line) {
            break;
        }
        out.write_all(line.as_bytes())?;
        rows += 1;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_shaped_like_tsbs() {
        let spec = Spec {
            scale: 3,
            start: 0,
            duration: 30_000_000_000,
            seed: 7,
            host_offset: 0,
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        assert_eq!(write_lines(&spec, &mut a).unwrap(), 9);
        write_lines(&spec, &mut b).unwrap();
        assert_eq!(a, b);
        let text = String::from_utf8(a).unwrap();
        let first = text.lines().next().unwrap();
        assert!(first.starts_with("cpu,hostname=host_0,region="), "{first}");
        assert_eq!(
            first.matches(',').count(),
            10 + 9,
            "ten tags and ten fields: {first}"
        );
        assert!(first.ends_with(" 0"));
        let mut other = Vec::new();
        write_lines(&Spec { seed: 8, ..spec }, &mut other).unwrap();
        assert_ne!(text.as_bytes(), other.as_slice());
        // Line by line, the same text.
        let mut lines = Lines::new(&spec);
        let mut streamed = String::new();
        while lines.next_into(&mut streamed) {}
        assert_eq!(streamed, text);
        // Other hosts, same times.
        let mut other = Lines::new(&Spec {
            host_offset: 10,
            ..spec
        });
        let mut line = String::new();
        assert!(other.next_into(&mut line));
        assert!(line.starts_with("cpu,hostname=host_10,"), "{line}");
        assert!(line.ends_with(" 0\n"), "{line}");
    }
}
