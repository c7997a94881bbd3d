//! The containers under `<root>/containers/`: creating them (with a
//! unique name), finding them by id, unique id prefix or name, listing,
//! renaming and removing them.

use crate::config::ContainerConfig;
use crate::state::{State, Status};
use crate::{io_at, write_atomic, Result, RuntimeError};
use std::fs;
use std::path::{Path, PathBuf};

/// The containers of one store.
#[derive(Debug, Clone)]
pub struct Containers {
    dir: PathBuf,
}

/// One container: its directory and configuration.
#[derive(Debug, Clone)]
pub struct Container {
    pub dir: PathBuf,
    pub config: ContainerConfig,
}

impl Containers {
    pub fn new(store_root: &Path) -> Containers {
        Containers {
            dir: store_root.join("containers"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn names(&self) -> PathBuf {
        self.dir.join("names")
    }

    /// Makes a container's directory, takes its name (a generated one
    /// when the config has none) and writes its config and a `created`
    /// state. The id and `created` are filled in here.
    pub fn create(&self, mut config: ContainerConfig) -> Result<Container> {
        config.id = crate::random_id();
        config.created = crate::time::now();
        let dir = self.dir.join(&config.id);
        fs::create_dir_all(&dir).map_err(io_at(&dir))?;
        let names = self.names();
        fs::create_dir_all(&names).map_err(io_at(&names))?;
        let named = if config.name.is_empty() {
            self.take_generated_name(&config.id)
        } else {
            check_name(&config.name).and_then(|()| self.take_name(&config.name, &config.id))
        };
        match named {
            Ok(name) => config.name = name,
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                return Err(e);
            }
        }
        let container = Container { dir, config };
        let written = container
            .save_config()
            .and_then(|()| container.save_state(&State::default()));
        if let Err(e) = written {
            let _ = self.remove(&container);
            return Err(e);
        }
        Ok(container)
    }

    fn take_name(&self, name: &str, id: &str) -> Result<String> {
        match std::os::unix::fs::symlink(id, self.names().join(name)) {
            Ok(()) => Ok(name.to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(RuntimeError::NameInUse(name.to_string()))
            }
            Err(e) => Err(io_at(&self.names())(e)),
        }
    }

    /// docker's `adjective_name`, picked from the id until one is free.
    fn take_generated_name(&self, id: &str) -> Result<String> {
        const ADJECTIVES: &[&str] = &[
            "brave", "calm", "eager", "fond", "gentle", "happy", "keen", "lucid", "merry", "nifty",
            "proud", "quiet", "sharp", "tender", "vivid", "witty",
        ];
        const NAMES: &[&str] = &[
            "babbage", "curie", "darwin", "euler", "fermat", "gauss", "hopper", "kepler",
            "lovelace", "noether", "pascal", "ritchie", "shannon", "turing", "wozniak", "yalow",
        ];
        let bytes: Vec<u8> = (0..id.len() / 2)
            .filter_map(|i| u8::from_str_radix(&id[2 * i..2 * i + 2], 16).ok())
            .collect();
        for (n, pair) in bytes.chunks(2).enumerate() {
            let a = ADJECTIVES[pair[0] as usize % ADJECTIVES.len()];
            let b = NAMES[*pair.get(1).unwrap_or(&0) as usize % NAMES.len()];
            let name = if n == 0 {
                format!("{a}_{b}")
            } else {
                format!("{a}_{b}{n}")
            };
            match self.take_name(&name, id) {
                Err(RuntimeError::NameInUse(_)) => continue,
                other => return other,
            }
        }
        self.take_name(&id[..12], id)
    }

    /// A container by full id, unique id prefix or name.
    pub fn find(&self, query: &str) -> Result<Container> {
        if query.is_empty() {
            return Err(RuntimeError::NoSuchContainer(query.into()));
        }
        let by_name = fs::read_link(self.names().join(query.trim_start_matches('/')))
            .ok()
            .map(|t| t.to_string_lossy().into_owned());
        let id = match by_name {
            Some(id) => id,
            None if query.chars().all(|c| c.is_ascii_hexdigit()) => {
                let ids: Vec<String> = self
                    .ids()
                    .into_iter()
                    .filter(|id| id.starts_with(query))
                    .collect();
                match ids.as_slice() {
                    [one] => one.clone(),
                    [] => return Err(RuntimeError::NoSuchContainer(query.into())),
                    _ => return Err(RuntimeError::Ambiguous(query.into())),
                }
            }
            None => return Err(RuntimeError::NoSuchContainer(query.into())),
        };
        self.load(&id)
            .ok_or_else(|| RuntimeError::NoSuchContainer(query.into()))
    }

    fn load(&self, id: &str) -> Option<Container> {
        let dir = self.dir.join(id);
        let bytes = fs::read(dir.join("config.json")).ok()?;
        let config = serde_json::from_slice(&bytes).ok()?;
        Some(Container { dir, config })
    }

    fn ids(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.len() == 64 && n.chars().all(|c| c.is_ascii_hexdigit()))
            .collect()
    }

    /// Every container, newest first.
    pub fn list(&self) -> Vec<Container> {
        let mut all: Vec<Container> = self.ids().iter().filter_map(|id| self.load(id)).collect();
        all.sort_by(|a, b| b.config.created.cmp(&a.config.created));
        all
    }

    pub fn rename(&self, c: &mut Container, new: &str) -> Result<()> {
        check_name(new)?;
        self.take_name(new, &c.config.id)?;
        let old = std::mem::replace(&mut c.config.name, new.to_string());
        if let Err(e) = c.save_config() {
            let _ = fs::remove_file(self.names().join(new));
            c.config.name = old;
            return Err(e);
        }
        let _ = fs::remove_file(self.names().join(&old));
        Ok(())
    }

    /// Deletes the container's directory and frees its name. The caller
    /// has made sure it is not running.
    pub fn remove(&self, c: &Container) -> Result<()> {
        let link = self.names().join(&c.config.name);
        if fs::read_link(&link).is_ok_and(|t| t == Path::new(&c.config.id)) {
            let _ = fs::remove_file(&link);
        }
        match fs::remove_dir_all(&c.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_at(&c.dir)(e)),
        }
    }

    /// Removes containers that are not running: all of them (`kiln
    /// prune`), or only `--rm` ones whose supervisor was killed before it
    /// could clean up. Also directories a create never finished. Returns
    /// how many went.
    pub fn sweep(&self, only_auto_remove: bool) -> usize {
        let mut removed = 0;
        for id in self.ids() {
            let Some(c) = self.load(&id) else {
                // No config: a create in progress, unless it is old.
                let dir = self.dir.join(&id);
                let old = fs::metadata(&dir)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t.elapsed().is_ok_and(|e| e.as_secs() > 60));
                if old && fs::remove_dir_all(&dir).is_ok() {
                    removed += 1;
                }
                continue;
            };
            let state = c.state();
            let running = state.running() || state.live_pid().is_some();
            if running || (only_auto_remove && !c.config.auto_remove) {
                continue;
            }
            // A created container (never started) is kept unless pruning.
            if only_auto_remove && state.status == Status::Created {
                continue;
            }
            if self.remove(&c).is_ok() {
                removed += 1;
            }
        }
        // Names whose container is gone.
        if let Ok(names) = fs::read_dir(self.names()) {
            for n in names.flatten() {
                if let Ok(target) = fs::read_link(n.path()) {
                    if !self.dir.join(&target).join("config.json").exists() {
                        let _ = fs::remove_file(n.path());
                    }
                }
            }
        }
        removed
    }
}

/// docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
fn check_name(name: &str) -> Result<()> {
    let name = name.trim_start_matches('/');
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(RuntimeError::Invalid(format!(
            "invalid container name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

impl Container {
    pub fn id(&self) -> &str {
        &self.config.id
    }

    pub fn short_id(&self) -> &str {
        &self.config.id[..12]
    }

    /// Its state (a container being created reads as `created`).
    pub fn state(&self) -> State {
        fs::read(self.dir.join("state.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn save_state(&self, state: &State) -> Result<()> {
        let bytes = serde_json::to_vec(state).map_err(|e| RuntimeError::Invalid(e.to_string()))?;
        write_atomic(&self.dir.join("state.json"), &bytes)
    }

    pub fn save_config(&self) -> Result<()> {
        let bytes =
            serde_json::to_vec(&self.config).map_err(|e| RuntimeError::Invalid(e.to_string()))?;
        write_atomic(&self.dir.join("config.json"), &bytes)
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("container.log")
    }

    /// The overlay's upper directory: everything the container changed.
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    fn stop_marker(&self) -> PathBuf {
        self.dir.join("stop-requested")
    }

    /// Marks that the user stopped it: the monitor restarts it no more.
    /// Asks the monitor to send `sig` to PID 1 (see `lifecycle::signal`).
    pub fn request_signal(&self, sig: i32) -> Result<()> {
        crate::write_atomic(&self.dir.join("signal-request"), sig.to_string().as_bytes())
    }

    /// The signal asked for, if any (the request is consumed).
    pub fn take_signal_request(&self) -> Option<i32> {
        let path = self.dir.join("signal-request");
        let text = fs::read_to_string(&path).ok()?;
        let _ = fs::remove_file(&path);
        text.trim().parse().ok()
    }

    pub fn request_stop(&self) {
        let _ = fs::write(self.stop_marker(), b"");
    }

    pub fn stop_requested(&self) -> bool {
        self.stop_marker().exists()
    }

    pub fn clear_stop_request(&self) {
        let _ = fs::remove_file(self.stop_marker());
    }

    /// Running or restarting, with a live supervisor.
    pub fn is_running(&self) -> bool {
        self.state().running()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(name: &str) -> ContainerConfig {
        serde_json::from_value(serde_json::json!({
            "id": "", "name": name, "created": "", "image": "busybox", "image_id": "sha256:00",
            "argv": ["sh"], "entrypoint": [], "cmd": ["sh"], "env": [], "working_dir": "/",
            "user": "", "hostname": "", "network": "host", "mounts": [], "memory": null,
            "pids_limit": null, "init": false, "tty": false, "interactive": false,
            "stop_signal": 15, "stop_timeout": null, "restart": {"name": "no"},
            "healthcheck": null, "no_new_privileges": false, "seccomp": true,
            "capabilities": 0, "read_only": false, "auto_remove": false
        }))
        .unwrap()
    }

    #[test]
    fn containers_are_found_by_name_and_unique_prefix_and_names_are_unique() {
        let tmp = tempfile::tempdir().unwrap();
        let cs = Containers::new(tmp.path());
        let a = cs.create(config("web")).unwrap();
        let b = cs.create(config("")).unwrap();
        assert!(!b.config.name.is_empty(), "a generated name");
        assert_eq!(cs.find("web").unwrap().id(), a.id());
        assert_eq!(cs.find(&a.id()[..12]).unwrap().id(), a.id());
        assert!(matches!(
            cs.find("nope"),
            Err(RuntimeError::NoSuchContainer(_))
        ));
        assert!(matches!(
            cs.create(config("web")),
            Err(RuntimeError::NameInUse(_))
        ));
        assert!(matches!(
            cs.create(config("-x")),
            Err(RuntimeError::Invalid(_))
        ));
        let mut a = cs.find("web").unwrap();
        cs.rename(&mut a, "api").unwrap();
        assert!(cs.find("web").is_err());
        assert_eq!(cs.find("api").unwrap().id(), a.id());
        cs.remove(&a).unwrap();
        assert!(cs.find("api").is_err());
        assert_eq!(cs.list().len(), 1);
        assert_eq!(cs.list().len(), 1);
    }
}
