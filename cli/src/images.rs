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
    // Unpacked now, as `load` leaves images: the first build from it
    // starts at once instead of paying for the unpack.
    store.snapshots_for(&img).map_err(fail)?;
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

/// `kiln images` as asked.
pub struct ImagesOptions {
    pub reference: Option<String>,
    pub format: String,
    pub quiet: bool,
    pub digests: bool,
    pub filters: Vec<String>,
}

/// docker's column titles for `images --format 'table ...'`.
fn image_header(field: &str) -> String {
    match field {
        "ID" => "IMAGE ID".into(),
        "CreatedSince" => "CREATED".into(),
        "CreatedAt" => "CREATED AT".into(),
        "VirtualSize" => "SIZE".into(),
        "SharedSize" => "SHARED SIZE".into(),
        "UniqueSize" => "UNIQUE SIZE".into(),
        other => other.to_uppercase(),
    }
}

/// `*` matches any run of characters (docker's reference patterns).
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(tail) = text.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|&i| tail.is_char_boundary(i))
                .any(|i| glob(rest, &tail[i..]))
        }
    }
}

/// Whether `repo`/`tag` is what `pattern` (`REPO[:TAG]`, wildcards
/// allowed) names.
fn reference_matches(pattern: &str, repo: &str, tag: &str) -> bool {
    let (p_repo, p_tag) = match pattern.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, Some(t)),
        _ => (pattern, None),
    };
    glob(p_repo, repo) && p_tag.is_none_or(|t| glob(t, tag))
}

/// One image row (a name of an image) against `--filter`s and the
/// positional reference.
fn image_kept(
    o: &ImagesOptions,
    img: &kiln_store::Image,
    (repo, tag): (&str, &str),
    store: &Store,
) -> Result<bool, CliError> {
    if let Some(r) = &o.reference {
        if !reference_matches(r, repo, tag) {
            return Ok(false);
        }
    }
    let created = |i: &kiln_store::Image| {
        i.created()
            .and_then(kiln_store::time::parse_rfc3339)
            .unwrap_or(0)
    };
    for f in &o.filters {
        let (key, value) = f
            .split_once('=')
            .ok_or_else(|| fail(format!("--filter {f:?}: want KEY=VALUE")))?;
        let keep = match key {
            "dangling" => match value {
                "true" | "1" => img.names.is_empty(),
                "false" | "0" => !img.names.is_empty(),
                _ => return Err(fail(format!("--filter {f:?}: dangling is true or false"))),
            },
            "reference" => reference_matches(value, repo, tag),
            "label" => {
                let labels = img.config.pointer("/config/Labels");
                match value.split_once('=') {
                    Some((k, v)) => {
                        labels.and_then(|l| l.get(k)).and_then(|l| l.as_str()) == Some(v)
                    }
                    None => labels.and_then(|l| l.get(value)).is_some(),
                }
            }
            "before" | "since" => {
                let other = store
                    .resolve(value)
                    .map_err(|e| fail(format!("--filter {f:?}: {e}")))?;
                if key == "before" {
                    created(img) < created(&other)
                } else {
                    created(img) > created(&other)
                }
            }
            other => {
                return Err(fail(format!(
                    "--filter {other}: unknown filter (dangling, label, reference, before, since)"
                )))
            }
        };
        if !keep {
            return Ok(false);
        }
    }
    Ok(true)
}

pub fn images(store: &Store, o: &ImagesOptions) -> Result<(), CliError> {
    let images = store.images().map_err(fail)?;
    let format = crate::format::Format::parse(&o.format, "--format")?;
    let mut rows = Vec::new();
    for img in &images {
        for (repo, tag) in repo_tags(img) {
            if !image_kept(o, img, (&repo, &tag), store)? {
                continue;
            }
            rows.push((img, repo, tag));
        }
    }
    if o.quiet {
        let mut ids: Vec<String> = rows.iter().map(|(i, _, _)| i.short_id()).collect();
        ids.dedup();
        return emit(&ids.iter().map(|i| format!("{i}\n")).collect::<String>());
    }
    // docker's fields for a row, and kiln's platform.
    let objects: Vec<serde_json::Value> = rows
        .iter()
        .map(|(img, repo, tag)| {
            serde_json::json!({
                "Containers": "N/A",
                "CreatedAt": img.created().unwrap_or(""),
                "CreatedSince": ago(img.created().unwrap_or("")),
                "Digest": img.manifest_digest.to_string(),
                "ID": img.short_id(),
                "Platform": kiln_store::platform_name(&img.config),
                "Repository": repo,
                "SharedSize": "N/A",
                "Size": human_size(img.size()),
                "Tag": tag,
                "UniqueSize": "N/A",
                "VirtualSize": human_size(img.size()),
            })
        })
        .collect();
    if let Some(text) = format.render(&objects, &image_header, "--format")? {
        return emit(&text);
    }
    let mut header = vec!["REPOSITORY".to_string(), "TAG".into()];
    if o.digests {
        header.push("DIGEST".into());
    }
    header.extend(["IMAGE ID", "CREATED", "SIZE", "PLATFORM"].map(String::from));
    let mut table_rows = vec![header];
    for v in &objects {
        let field = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        let mut row = vec![field("Repository"), field("Tag")];
        if o.digests {
            row.push(field("Digest"));
        }
        row.extend(["ID", "CreatedSince", "Size", "Platform"].map(field));
        table_rows.push(row);
    }
    emit(&table(&table_rows))
}

/// Rows as docker prints its tables: each column as wide as its widest
/// cell, three spaces between columns, the last one unpadded.
pub(crate) fn table<R: AsRef<[String]>>(rows: &[R]) -> String {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (i, c) in row.as_ref().iter().enumerate() {
            if widths.len() <= i {
                widths.push(0);
            }
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let row = row.as_ref();
        let mut line = String::new();
        for (i, c) in row.iter().enumerate() {
            if i + 1 == row.len() {
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

/// docker's column titles for `history --format 'table ...'`.
fn history_header(field: &str) -> String {
    match field {
        "ID" => "IMAGE".into(),
        "CreatedSince" => "CREATED".into(),
        "CreatedAt" => "CREATED AT".into(),
        "CreatedBy" => "CREATED BY".into(),
        other => other.to_uppercase(),
    }
}

pub fn history(
    store: &Store,
    name: &str,
    no_trunc: bool,
    quiet: bool,
    format: Option<&str>,
) -> Result<(), CliError> {
    let img = store.resolve(name).map_err(fail)?;
    let format = crate::format::Format::parse(format.unwrap_or("table"), "--format")?;
    let id = if no_trunc {
        img.config_digest.to_string()
    } else {
        img.short_id()
    };
    // Newest first, as docker lists them; only the image itself has an ID
    // (its layers' intermediate images are not images here).
    let mut entries = img.history();
    entries.reverse();
    let objects: Vec<serde_json::Value> = entries
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let by = if no_trunc || h.created_by.chars().count() <= 45 {
                h.created_by.clone()
            } else {
                h.created_by.chars().take(44).collect::<String>() + "…"
            };
            serde_json::json!({
                "Comment": h.comment,
                "CreatedAt": h.created,
                "CreatedBy": by,
                "CreatedSince": ago(&h.created),
                "ID": if i == 0 { id.clone() } else { "<missing>".to_string() },
                "Size": human_size(h.size),
            })
        })
        .collect();
    if quiet {
        return emit(&format!("{id}\n"));
    }
    if let Some(text) = format.render(&objects, &history_header, "--format")? {
        return emit(&text);
    }
    let mut rows = vec![[
        "IMAGE".to_string(),
        "CREATED".into(),
        "CREATED BY".into(),
        "SIZE".into(),
        "COMMENT".into(),
    ]];
    for v in &objects {
        let field = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        rows.push(["ID", "CreatedSince", "CreatedBy", "Size", "Comment"].map(field));
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

/// `kiln builder prune` as asked.
pub struct BuilderPrune {
    pub all: bool,
    pub force: bool,
    pub keep_storage: Option<String>,
    pub keep_duration: Option<String>,
    pub filters: Vec<String>,
}

/// Go's durations (`30s`, `1h30m`, `24h`: the parser's HEALTHCHECK
/// reader) or whole days (`7d`), in seconds.
fn duration_secs(flag: &str, text: &str) -> Result<i64, CliError> {
    if let Some(days) = text.strip_suffix('d').and_then(|n| n.parse::<i64>().ok()) {
        return Ok(days * 86400);
    }
    kiln_parser::instructions::parse_duration(text)
        .map(|d| d.as_secs() as i64)
        .ok_or_else(|| fail(format!("{flag} {text:?}: want a duration (30m, 24h, 7d)")))
}

pub fn builder_prune(store: &Store, o: &BuilderPrune) -> Result<(), CliError> {
    let keep_bytes = match &o.keep_storage {
        Some(v) if !o.all => Some(
            kiln_parser::units::ram_in_bytes(v)
                .ok_or_else(|| fail(format!("--keep-storage {v:?}: want a size (50MB, 10GB)")))?,
        ),
        _ => None,
    };
    let keep_duration = match &o.keep_duration {
        Some(v) if !o.all => Some(duration_secs("--keep-duration", v)?),
        _ => None,
    };
    let (mut records, mut mounts) = (true, true);
    for f in &o.filters {
        match f.as_str() {
            "type=regular" => mounts = false,
            "type=exec.cachemount" => records = false,
            other => {
                return Err(fail(format!(
                    "--filter {other}: unknown filter (type=regular, type=exec.cachemount)"
                )))
            }
        }
    }
    if !o.force {
        eprint!("WARNING! This will remove build cache. Are you sure you want to continue? [y/N] ");
        if !confirmed() {
            eprintln!("Nothing removed.");
            return Ok(());
        }
    }
    let pruned = kiln_builder::gc::prune(
        store,
        &kiln_builder::gc::Policy {
            keep_bytes,
            keep_duration,
            records,
            mounts,
        },
    )
    .map_err(fail)?;
    emit(&format!(
        "Deleted build cache records: {}\nDeleted cache mounts: {}\nTotal reclaimed space: {}\n",
        pruned.records,
        pruned.mounts,
        human_size(pruned.bytes)
    ))
}

/// A `y` or `yes` answer on stdin (anything else, or none, is no).
fn confirmed() -> bool {
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// `system df`: docker's rows (images, containers, build cache) and the
/// cache mounts, each RECLAIMABLE being what removing the unused ones
/// frees (`kiln prune -a`, `kiln rm`, `kiln builder prune -a`).
pub fn df(store: &Store, verbose: bool) -> Result<(), CliError> {
    let images = store.images().map_err(fail)?;
    let containers = kiln_runtime::Containers::new(store.root()).list();
    let used_images: std::collections::HashSet<String> = containers
        .iter()
        .map(|c| c.config.image_id.clone())
        .collect();
    let image_used = |i: &kiln_store::Image| used_images.contains(&i.config_digest.to_string());
    let sized: Vec<(bool, u64)> = containers
        .iter()
        .map(|c| (c.is_running(), kiln_store::dir_size(&c.dir)))
        .collect();
    let cache = kiln_builder::gc::usage(store).map_err(fail)?;
    let row = |kind: &str, total: usize, active: usize, size: u64, reclaimable: u64| {
        let pct = if size == 0 {
            0
        } else {
            reclaimable * 100 / size.max(1)
        };
        [
            kind.to_string(),
            total.to_string(),
            active.to_string(),
            human_size(size),
            format!("{} ({pct}%)", human_size(reclaimable)),
        ]
    };
    let mut rows = vec![[
        "TYPE".to_string(),
        "TOTAL".into(),
        "ACTIVE".into(),
        "SIZE".into(),
        "RECLAIMABLE".into(),
    ]];
    rows.push(row(
        "Images",
        images.len(),
        images.iter().filter(|i| image_used(i)).count(),
        images.iter().map(kiln_store::Image::size).sum(),
        images
            .iter()
            .filter(|i| !image_used(i))
            .map(kiln_store::Image::size)
            .sum(),
    ));
    rows.push(row(
        "Containers",
        containers.len(),
        sized.iter().filter(|(r, _)| *r).count(),
        sized.iter().map(|(_, s)| s).sum(),
        sized.iter().filter(|(r, _)| !*r).map(|(_, s)| s).sum(),
    ));
    rows.push(row(
        "Build Cache",
        cache.records,
        0,
        cache.records_bytes,
        cache.records_reclaimable,
    ));
    rows.push(row(
        "Cache Mounts",
        cache.mounts,
        cache.mounts_active,
        cache.mounts_bytes,
        cache.mounts_reclaimable,
    ));
    let mut text = table(&rows);
    if verbose {
        let u = store.disk_usage().map_err(fail)?;
        text.push_str(&format!(
            "\nStore internals: blobs {}, snapshots {} ({}), unreferenced blobs {}\n",
            human_size(u.blobs_bytes),
            u.snapshots,
            human_size(u.snapshots_bytes),
            human_size(u.reclaimable_bytes)
        ));
    }
    emit(&text)
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
