//! The image commands: load, save, import, images, inspect, history, tag,
//! rmi, prune, system df/check.

use crate::{emit, fail, CliError};
use kiln_store::{Reference, Store};
use std::fs;
use std::io::{self, IsTerminal, Read, Write};
use std::path::Path;

pub fn open_store(root: &Path) -> Result<Store, CliError> {
    Store::open(root).map_err(|e| fail(format!("cannot open the store at {}: {e}", root.display())))
}

/// Docker's size style: decimal units, three significant digits.
pub fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes}B")
    } else if v < 10.0 {
        format!("{v:.2}{}", units[i])
    } else if v < 100.0 {
        format!("{v:.1}{}", units[i])
    } else {
        format!("{v:.0}{}", units[i])
    }
}

/// "3 days ago" from an RFC 3339 timestamp (seconds precision).
fn ago(created: &str) -> String {
    let Some(secs) = kiln_store::time::parse_rfc3339(created) else {
        return "N/A".into();
    };
    let d = (kiln_store::now() - secs).max(0);
    match d {
        0..=59 => "Less than a minute ago".into(),
        60..=119 => "About a minute ago".into(),
        120..=3599 => format!("{} minutes ago", d / 60),
        3600..=7199 => "About an hour ago".into(),
        7200..=172_799 => format!("{} hours ago", d / 3600),
        172_800..=1_209_599 => format!("{} days ago", d / 86_400),
        1_209_600..=5_183_999 => format!("{} weeks ago", d / 604_800),
        5_184_000..=63_071_999 => format!("{} months ago", d / 2_592_000),
        _ => format!("{} years ago", d / 31_536_000),
    }
}

fn open_input(path: &str) -> Result<Box<dyn Read>, CliError> {
    if path == "-" {
        if io::stdin().is_terminal() {
            return Err(fail(
                "refusing to read an archive from a terminal: give -i FILE or pipe one in",
            ));
        }
        return Ok(Box::new(io::stdin().lock()));
    }
    fs::File::open(path)
        .map(|f| Box::new(io::BufReader::with_capacity(1 << 20, f)) as Box<dyn Read>)
        .map_err(|e| fail(format!("cannot read {path}: {e}")))
}

pub fn load(store: &Store, input: &str, quiet: bool) -> Result<(), CliError> {
    let report = if input != "-" && Path::new(input).is_dir() {
        store.load_dir(Path::new(input)).map_err(fail)?
    } else {
        let reader = open_input(input)?;
        let source = if input == "-" { "<stdin>" } else { input };
        store.load(reader, source).map_err(fail)?
    };
    // Unpacked now, as `docker load` leaves images (all layers at once):
    // the first build or run from them starts without unpacking.
    for (id, _) in &report.images {
        let image = store.resolve(&id.to_string()).map_err(fail)?;
        store.snapshots_for(&image).map_err(fail)?;
    }
    if !quiet {
        let mut out = String::new();
        for (id, names) in &report.images {
            if names.is_empty() {
                out.push_str(&format!("Loaded image ID: {id}\n"));
            }
            for n in names {
                let r = Reference::parse(n)
                    .map(|r| r.familiar())
                    .unwrap_or_else(|_| n.clone());
                out.push_str(&format!("Loaded image: {r}\n"));
            }
        }
        emit(&out)?;
    }
    Ok(())
}

pub fn save(
    store: &Store,
    output: Option<&Path>,
    images: &[String],
    oci_dir: bool,
) -> Result<(), CliError> {
    let mut list = Vec::new();
    for what in images {
        let img = store.resolve(what).map_err(fail)?;
        let by_name = Reference::parse(what)
            .ok()
            .filter(|r| img.names.contains(&r.to_string()));
        match by_name {
            // A multi-platform name: every platform's image, one index.
            Some(r) => {
                for (_, platform_img) in store.platforms_of(what).map_err(fail)? {
                    list.push((platform_img, Some(r.clone())));
                }
            }
            None if img.names.is_empty() => list.push((img, None)),
            None => {
                let names: Vec<Reference> = img
                    .names
                    .iter()
                    .filter_map(|n| Reference::parse(n).ok())
                    .collect();
                for r in names {
                    list.push((img.clone(), Some(r)));
                }
            }
        }
    }
    if oci_dir {
        let Some(dir) = output.filter(|p| *p != Path::new("-")) else {
            return Err(fail("--format oci-dir needs -o DIR"));
        };
        return store.save_dir(&list, dir).map_err(fail);
    }
    match output.filter(|p| *p != Path::new("-")) {
        None => {
            if io::stdout().is_terminal() {
                return Err(fail(
                    "refusing to write an archive to a terminal: give -o FILE or redirect",
                ));
            }
            let mut out = io::BufWriter::new(io::stdout().lock());
            store.save(&list, &mut out).map_err(fail)?;
            out.flush().map_err(fail)?;
        }
        Some(path) => {
            // Write beside the target and rename: never a half-written archive.
            let tmp = path.with_file_name(format!(
                ".{}.kiln-{}",
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                std::process::id()
            ));
            let result = (|| -> Result<(), String> {
                let file = fs::File::create(&tmp)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                let mut out = io::BufWriter::with_capacity(1 << 20, file);
                store.save(&list, &mut out).map_err(|e| e.to_string())?;
                let file = out.into_inner().map_err(|e| e.to_string())?;
                file.sync_all().map_err(|e| e.to_string())?;
                fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
            })();
            if let Err(e) = result {
                let _ = fs::remove_file(&tmp);
                return Err(fail(e));
            }
        }
    }
    Ok(())
}

pub fn import(
    store: &Store,
    input: &str,
    name: &str,
    changes: &[String],
    message: Option<&str>,
    platform: Option<&str>,
) -> Result<(), CliError> {
    let reference = Reference::parse(name).map_err(fail)?;
    let platform = platform
        .map(|p| crate::registry::parse_platform("--platform", Some(p)).map(|p| p.to_string()))
        .transpose()?;
    let mut config = serde_json::Map::new();
    for change in changes {
        crate::change::apply(change, &mut config).map_err(fail)?;
    }
    let reader = open_input(input)?;
    let opts = kiln_store::ImportOptions {
        config,
        created_by: message.map(str::to_string).unwrap_or_default(),
        compression: None,
        epoch: source_date_epoch()?,
        platform,
    };
    let img = store
        .import(reader, &reference, &opts)
        .map_err(|e| fail(format!("{input}: {e}")))?;
    emit(&format!("{}\n", img.config_digest))
}

/// `SOURCE_DATE_EPOCH`, when set: the imported image's time.
pub(crate) fn source_date_epoch() -> Result<Option<i64>, CliError> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => {
            kiln_store::time::parse_epoch(&v).map(Some).ok_or_else(|| {
                fail(format!(
                    "SOURCE_DATE_EPOCH={v:?}: want seconds since 1970 (an integer ≥ 0)"
                ))
            })
        }
        _ => Ok(None),
    }
}

/// One (REPOSITORY, TAG) row per name of the image, or `<none>` twice.
fn repo_tags(img: &kiln_store::Image) -> Vec<(String, String)> {
    let refs: Vec<Reference> = img
        .names
        .iter()
        .filter_map(|n| Reference::parse(n).ok())
        .collect();
    // A pull names the image `repo@digest` too; as in docker, that shows
    // only for a repository with no tag for the image.
    let tagged: Vec<String> = refs
        .iter()
        .filter(|r| r.tag.is_some())
        .map(|r| r.familiar_repository())
        .collect();
    let mut rows: Vec<(String, String)> = refs
        .into_iter()
        .filter(|r| r.tag.is_some() || !tagged.contains(&r.familiar_repository()))
        .map(|r| {
            (
                r.familiar_repository(),
                r.tag.unwrap_or_else(|| "<none>".into()),
            )
        })
        .collect();
    rows.dedup();
    if rows.is_empty() {
        vec![("<none>".into(), "<none>".into())]
    } else {
        rows
    }
}

pub fn images(store: &Store, json: bool, quiet: bool) -> Result<(), CliError> {
    let images = store.images().map_err(fail)?;
    if json {
        let mut out = String::new();
        for img in &images {
            for (repo, tag) in repo_tags(img) {
                let v = serde_json::json!({
                    "Repository": repo, "Tag": tag, "ID": img.short_id(),
                    "Platform": kiln_store::platform_name(&img.config),
                    "Digest": img.manifest_digest.to_string(),
                    "CreatedAt": img.created().unwrap_or(""), "Size": human_size(img.size()),
                    "VirtualSize": img.size(),
                });
                out.push_str(&serde_json::to_string(&v).unwrap_or_default());
                out.push('\n');
            }
        }
        return emit(&out);
    }
    if quiet {
        let mut ids: Vec<String> = images.iter().map(|i| i.short_id()).collect();
        ids.dedup();
        return emit(&ids.iter().map(|i| format!("{i}\n")).collect::<String>());
    }
    let mut rows = vec![[
        "REPOSITORY".to_string(),
        "TAG".into(),
        "IMAGE ID".into(),
        "CREATED".into(),
        "SIZE".into(),
        "PLATFORM".into(),
    ]];
    for img in &images {
        let created = ago(img.created().unwrap_or(""));
        let platform = kiln_store::platform_name(&img.config);
        for (repo, tag) in repo_tags(img) {
            rows.push([
                repo,
                tag,
                img.short_id(),
                created.clone(),
                human_size(img.size()),
                platform.clone(),
            ]);
        }
    }
    emit(&table(&rows))
}

pub(crate) fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, c) in row.iter().enumerate() {
            if i + 1 == N {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}   ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub fn history(store: &Store, name: &str) -> Result<(), CliError> {
    let img = store.resolve(name).map_err(fail)?;
    let mut rows = vec![[
        "CREATED".to_string(),
        "CREATED BY".into(),
        "SIZE".into(),
        "COMMENT".into(),
    ]];
    for h in img.history() {
        let by: String = h.created_by.chars().take(60).collect();
        rows.push([ago(&h.created), by, human_size(h.size), h.comment]);
    }
    emit(&table(&rows))
}

pub fn tag(store: &Store, source: &str, target: &str) -> Result<(), CliError> {
    store.tag(source, target).map(|_| ()).map_err(fail)
}

/// Whether removing `n` would remove an image a container uses: refused
/// (docker's conflict), or with `force` and only stopped containers, the
/// names go and the image stays for them. Some(untagged) when handled.
fn rmi_in_use(store: &Store, n: &str, force: bool) -> Result<Option<Vec<String>>, CliError> {
    let Ok(image) = store.resolve(n) else {
        return Ok(None);
    };
    let by_name = Reference::parse(n)
        .ok()
        .is_some_and(|r| image.names.contains(&r.to_string()));
    if by_name && image.names.len() > 1 {
        return Ok(None); // only a name goes
    }
    let id = image.config_digest.to_string();
    let users: Vec<kiln_runtime::Container> = kiln_runtime::Containers::new(store.root())
        .list()
        .into_iter()
        .filter(|c| c.config.image_id == id)
        .collect();
    let Some(user) = users.first() else {
        return Ok(None);
    };
    let short = |c: &kiln_runtime::Container| c.id()[..12].to_string();
    if let Some(running) = users.iter().find(|c| c.is_running()) {
        return Err(fail(format!(
            "conflict: unable to delete {n} (cannot be forced) - image {} is being used by running container {}",
            image.short_id(),
            short(running)
        )));
    }
    if !force {
        return Err(fail(format!(
            "conflict: unable to remove repository reference \"{n}\" (must force) - container {} is using its referenced image {}",
            short(user),
            image.short_id()
        )));
    }
    store.untag(n).map(Some).map_err(fail)
}

pub fn rmi(store: &Store, names: &[String], force: bool) -> Result<(), CliError> {
    let mut failed = false;
    let mut out = String::new();
    for n in names {
        let removed = match rmi_in_use(store, n, force) {
            Ok(Some(untagged)) => Ok(untagged),
            Ok(None) => store.remove(n, force).map_err(fail),
            Err(e) => Err(e),
        };
        match removed {
            Ok(untagged) => {
                for u in untagged {
                    let r = Reference::parse(&u).map(|r| r.familiar()).unwrap_or(u);
                    out.push_str(&format!("Untagged: {r}\n"));
                }
            }
            Err(e) => {
                crate::report(&e);
                failed = true;
            }
        }
    }
    emit(&out)?;
    if failed {
        Err(CliError::Reported)
    } else {
        Ok(())
    }
}

pub fn prune(store: &Store, all: bool, force: bool) -> Result<(), CliError> {
    if !force {
        let images = if all {
            "all images without at least one container associated to them"
        } else {
            "all dangling (unnamed) images"
        };
        eprint!(
            "WARNING! This will remove:\n  - all stopped containers\n  - {images}\n  - all build cache\n\
             Are you sure you want to continue? [y/N] "
        );
        if !confirmed() {
            eprintln!("Nothing removed.");
            return Ok(());
        }
    }
    let containers = crate::containers::sweep(store);
    let r = store.prune(all).map_err(fail)?;
    emit(&format!(
        "Deleted containers: {containers}\nDeleted images: {}\nDeleted build cache records: {}\nDeleted blobs: {}\nDeleted snapshots: {}\nTotal reclaimed space: {}\n",
        r.images_removed,
        r.cache_records_removed,
        r.blobs_removed,
        r.snapshots_removed,
        human_size(r.bytes_freed)
    ))
}

/// A `y` or `yes` answer on stdin (anything else, or none, is no).
fn confirmed() -> bool {
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

pub fn df(store: &Store) -> Result<(), CliError> {
    let u = store.disk_usage().map_err(fail)?;
    emit(&table(&[
        [
            "TYPE".to_string(),
            "TOTAL".into(),
            "SIZE".into(),
            "RECLAIMABLE".into(),
        ],
        [
            "Images".into(),
            u.images.to_string(),
            human_size(u.images_size),
            human_size(u.reclaimable_bytes),
        ],
        [
            "Blobs".into(),
            "-".into(),
            human_size(u.blobs_bytes),
            human_size(u.reclaimable_bytes),
        ],
        [
            "Snapshots".into(),
            u.snapshots.to_string(),
            human_size(u.snapshots_bytes),
            "-".into(),
        ],
    ]))
}

pub fn snapshots(store: &Store, name: &str) -> Result<(), CliError> {
    let img = store.resolve(name).map_err(fail)?;
    let dirs = store.snapshots_for(&img).map_err(fail)?;
    emit(
        &dirs
            .iter()
            .map(|d| format!("{}\n", d.display()))
            .collect::<String>(),
    )
}

pub fn check(store: &Store) -> Result<(), CliError> {
    let r = store.check().map_err(fail)?;
    let mut out = format!(
        "checked {} blobs, {} images, {} snapshots\n",
        r.blobs_checked, r.images_checked, r.snapshots_checked
    );
    for f in &r.fixed {
        out.push_str(&format!("fixed: {f}\n"));
    }
    for p in &r.problems {
        out.push_str(&format!("problem: {p}\n"));
    }
    emit(&out)?;
    if r.problems.is_empty() {
        Ok(())
    } else {
        Err(CliError::Reported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_260_000), "4.26MB");
        assert_eq!(human_size(42_600_000), "42.6MB");
    }
}
