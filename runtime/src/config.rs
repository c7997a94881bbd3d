//! What a container is: everything needed to start it again, fixed when
//! it is created (`config.json`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerConfig {
    pub id: String,
    pub name: String,
    /// RFC 3339 with nanoseconds.
    pub created: String,
    /// The image as the user named it, and its ID (config digest).
    pub image: String,
    pub image_id: String,
    /// The command: entrypoint and cmd as docker combined them.
    pub argv: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub hostname: String,
    /// `host`, `none`, `container:ID`, or a network's name (`bridge`, the
    /// default for root).
    pub network: String,
    pub mounts: Vec<MountConfig>,
    pub memory: Option<u64>,
    pub pids_limit: Option<u64>,
    pub init: bool,
    pub tty: bool,
    pub interactive: bool,
    pub stop_signal: i32,
    /// Seconds `stop` waits before SIGKILL (docker's default: 10).
    pub stop_timeout: Option<u64>,
    pub restart: RestartPolicy,
    pub healthcheck: Option<HealthConfig>,
    pub no_new_privileges: bool,
    pub seccomp: bool,
    pub capabilities: u64,
    pub read_only: bool,
    pub auto_remove: bool,
    /// The image's labels (for `ps --filter label=`).
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// `--group-add`: group names or ids.
    #[serde(default)]
    pub group_add: Vec<String>,
    /// `--cpus` as CFS quota per 100 ms period, in microseconds.
    #[serde(default)]
    pub cpu_quota_us: Option<u64>,
    #[serde(default)]
    pub cpu_shares: Option<u64>,
    #[serde(default)]
    pub cpuset_cpus: Option<String>,
    /// `--ulimit NAME=SOFT[:HARD]`.
    #[serde(default)]
    pub ulimits: Vec<Ulimit>,
    /// `--device HOST[:CONTAINER]`.
    #[serde(default)]
    pub devices: Vec<DeviceConfig>,
    /// `/dev/shm`'s size in bytes (None: docker's 64 MiB).
    #[serde(default)]
    pub shm_size: Option<u64>,
    /// `--pid`: empty (the container's own) or `host`.
    #[serde(default)]
    pub pid_mode: String,
    /// `--ipc`: empty (private), `host`, or `container:ID`.
    #[serde(default)]
    pub ipc_mode: String,
    /// `--security-opt seccomp=FILE`: the profile's JSON, kept so the
    /// container starts the same way after the file changes (as docker).
    #[serde(default)]
    pub seccomp_profile: Option<String>,
    /// Networks joined besides the first (`network connect`).
    #[serde(default)]
    pub extra_networks: Vec<String>,
    /// `--network-alias`es (on every network it joins).
    #[serde(default)]
    pub network_aliases: Vec<String>,
    /// `-p` (and `-P`'s, host port 0: picked at start).
    #[serde(default)]
    pub ports: Vec<kiln_network::PortMapping>,
    /// `--add-host` as /etc/hosts lines.
    #[serde(default)]
    pub add_hosts: Vec<String>,
    /// `--dns` servers.
    #[serde(default)]
    pub dns: Vec<String>,
}

impl ContainerConfig {
    /// Whether it is on kiln networks (not host, none or another's).
    pub fn on_networks(&self) -> bool {
        !matches!(self.network.as_str(), "host" | "none") && !self.network.starts_with("container:")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    /// docker's name (`nofile`).
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceConfig {
    pub host: String,
    pub target: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    Bind,
    Volume,
    Tmpfs,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountConfig {
    pub kind: MountKind,
    /// A host path (bind) or a volume's name; empty for tmpfs.
    pub source: String,
    /// Absolute path in the container.
    pub target: String,
    pub readonly: bool,
    /// tmpfs size in bytes (0: the kernel's default).
    #[serde(default)]
    pub size: u64,
    /// An anonymous volume (an image VOLUME, or `-v /path`): `rm -v`
    /// removes it with the container.
    #[serde(default)]
    pub anonymous: bool,
}

/// `--restart`, applied by the monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum RestartPolicy {
    #[default]
    No,
    /// Restart after a non-zero exit, at most `max` times (0: no limit).
    OnFailure {
        max: u32,
    },
    Always,
    UnlessStopped,
}

impl RestartPolicy {
    /// `no`, `on-failure[:N]`, `always`, `unless-stopped`.
    pub fn parse(s: &str) -> Option<RestartPolicy> {
        Some(match s.split_once(':') {
            None => match s {
                "no" | "" => RestartPolicy::No,
                "on-failure" => RestartPolicy::OnFailure { max: 0 },
                "always" => RestartPolicy::Always,
                "unless-stopped" => RestartPolicy::UnlessStopped,
                _ => return None,
            },
            Some(("on-failure", n)) => RestartPolicy::OnFailure {
                max: n.parse().ok()?,
            },
            Some(_) => return None,
        })
    }

    /// docker's names (HostConfig.RestartPolicy).
    pub fn name(self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::OnFailure { .. } => "on-failure",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
        }
    }

    pub fn max_retries(self) -> u32 {
        match self {
            RestartPolicy::OnFailure { max } => max,
            _ => 0,
        }
    }

    /// Whether a container that exited with `code` after `restarts`
    /// restarts goes again (a stop asked for by the user never does).
    pub fn restarts(self, code: i32, restarts: u32, stopped_by_user: bool) -> bool {
        if stopped_by_user {
            return false;
        }
        match self {
            RestartPolicy::No => false,
            RestartPolicy::OnFailure { max } => code != 0 && (max == 0 || restarts < max),
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
        }
    }
}

/// A health check (the image's HEALTHCHECK, or `--health-*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthConfig {
    /// docker's form: `["CMD", ...]`, `["CMD-SHELL", "cmd"]`, `["NONE"]`.
    pub test: Vec<String>,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub start_period_ms: u64,
    pub start_interval_ms: u64,
    pub retries: u32,
}

const DEFAULT_INTERVAL_MS: u64 = 30_000;
const DEFAULT_TIMEOUT_MS: u64 = 30_000;
const DEFAULT_START_INTERVAL_MS: u64 = 5_000;
const DEFAULT_RETRIES: u32 = 3;

impl HealthConfig {
    /// The image config's `Healthcheck` (durations in nanoseconds, 0 =
    /// the default), if it has a test that is not NONE.
    pub fn from_image(v: &Value) -> Option<HealthConfig> {
        let test: Vec<String> = v
            .get("Test")?
            .as_array()?
            .iter()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect();
        let ms = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0) / 1_000_000;
        HealthConfig {
            test,
            interval_ms: ms("Interval"),
            timeout_ms: ms("Timeout"),
            start_period_ms: ms("StartPeriod"),
            start_interval_ms: ms("StartInterval"),
            retries: v.get("Retries").and_then(Value::as_u64).unwrap_or(0) as u32,
        }
        .with_defaults()
    }

    /// Zeros replaced by docker's defaults; None when the test is empty
    /// or NONE (health checks disabled).
    pub fn with_defaults(mut self) -> Option<HealthConfig> {
        if self.test.is_empty() || self.test[0] == "NONE" {
            return None;
        }
        if self.interval_ms == 0 {
            self.interval_ms = DEFAULT_INTERVAL_MS;
        }
        if self.timeout_ms == 0 {
            self.timeout_ms = DEFAULT_TIMEOUT_MS;
        }
        if self.start_interval_ms == 0 {
            self.start_interval_ms = DEFAULT_START_INTERVAL_MS;
        }
        if self.retries == 0 {
            self.retries = DEFAULT_RETRIES;
        }
        Some(self)
    }

    /// The command to run in the container.
    pub fn argv(&self) -> Vec<String> {
        match self.test.first().map(String::as_str) {
            Some("CMD") => self.test[1..].to_vec(),
            Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), self.test[1..].join(" ")],
            _ => self.test.clone(),
        }
    }

    /// docker's Config.Healthcheck shape (nanoseconds).
    pub fn to_docker(&self) -> Value {
        serde_json::json!({
            "Test": self.test,
            "Interval": self.interval_ms * 1_000_000,
            "Timeout": self.timeout_ms * 1_000_000,
            "StartPeriod": self.start_period_ms * 1_000_000,
            "StartInterval": self.start_interval_ms * 1_000_000,
            "Retries": self.retries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_parse_and_decide_as_docker() {
        assert_eq!(
            RestartPolicy::parse("on-failure:2"),
            Some(RestartPolicy::OnFailure { max: 2 })
        );
        assert_eq!(RestartPolicy::parse("sometimes"), None);
        assert_eq!(RestartPolicy::parse("on-failure:x"), None);
        let p = RestartPolicy::OnFailure { max: 2 };
        assert!(p.restarts(1, 0, false) && p.restarts(1, 1, false));
        assert!(!p.restarts(1, 2, false), "two restarts, then it stays down");
        assert!(!p.restarts(0, 0, false), "a clean exit is not a failure");
        assert!(
            !RestartPolicy::Always.restarts(0, 9, true),
            "a user's stop wins"
        );
        assert!(RestartPolicy::Always.restarts(0, 9, false));
    }

    #[test]
    fn image_health_checks_get_docker_defaults() {
        let v =
            serde_json::json!({"Test": ["CMD-SHELL", "test -f /ok"], "Interval": 1_000_000_000u64});
        let h = HealthConfig::from_image(&v).unwrap();
        assert_eq!((h.interval_ms, h.timeout_ms, h.retries), (1000, 30_000, 3));
        assert_eq!(h.argv(), ["/bin/sh", "-c", "test -f /ok"]);
        assert!(HealthConfig::from_image(&serde_json::json!({"Test": ["NONE"]})).is_none());
    }
}
