//! What a container is doing (`state.json`), written only by the process
//! that supervises it, atomically.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Restarting,
    Exited,
    /// Its supervisor died without recording an exit (see lib.rs).
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    /// The container's PID 1 as `pid:start-time` (see `ProcessId`); empty
    /// when not running.
    #[serde(default)]
    pub pid: String,
    /// The supervising process (`pid:start-time`).
    #[serde(default)]
    pub supervisor: String,
    /// The supervisor is a monitor that relays signals it is asked for
    /// (see `lifecycle::signal`).
    #[serde(default)]
    pub relays_signals: bool,
    #[serde(default)]
    pub started_at: String,
    #[serde(default)]
    pub finished_at: String,
    #[serde(default)]
    pub exit_code: i32,
    /// Why the last start failed.
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub restart_count: u32,
    #[serde(default)]
    pub health: Option<Health>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Health {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: String,
    pub failing_streak: u32,
    /// The last five probes.
    pub log: Vec<Probe>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Probe {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

impl State {
    /// The container's PID 1, if it is still the same process.
    pub fn live_pid(&self) -> Option<u32> {
        let p: kiln_store::ProcessId = self.pid.parse().ok()?;
        p.alive().then_some(p.pid as u32)
    }

    /// Whether the supervisor recorded here still runs.
    pub fn supervisor_alive(&self) -> bool {
        self.supervisor
            .parse::<kiln_store::ProcessId>()
            .is_ok_and(|p| p.alive())
    }

    /// Running or restarting, with a live supervisor.
    pub fn running(&self) -> bool {
        matches!(self.effective(), Status::Running | Status::Restarting)
    }

    /// The status as it really is: running or restarting only while the
    /// supervisor lives (a killed monitor leaves a dead container).
    pub fn effective(&self) -> Status {
        match self.status {
            Status::Running | Status::Restarting if !self.supervisor_alive() => Status::Dead,
            s => s,
        }
    }
}
