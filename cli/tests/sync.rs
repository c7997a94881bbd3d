//! A build step's fsyncs are deferred to one sync of the store at the end
//! of the build; a container's are real. Needs root.
//!
//! Alone in its own test binary: it reads the machine's dirty page cache,
//! and any other build finishing meanwhile (kiln syncs the store at the end
//! of every build) would write this test's pages out under it.

use kiln_tests::Kiln;

fn kiln() -> Kiln {
    Kiln::with_busybox(env!("CARGO_BIN_EXE_kiln"))
}

/// Megabytes of dirty page cache right before and right after `sync`
/// (another process's sync in between is possible but unlikely: the
/// test retries when the "before" shows ours were already written).
const DIRTY_AROUND_SYNC: &str = "dd if=/dev/zero of=/f bs=1M count=96 2>/dev/null \
    && a=$(awk '/^Dirty:/ { print int($2 / 1024) }' /proc/meminfo) && sync \
    && b=$(awk '/^Dirty:/ { print int($2 / 1024) }' /proc/meminfo) && echo $a $b";

fn dirty(output: &str) -> Option<(u64, u64)> {
    let mut it = output.split_whitespace().map(|n| n.parse().unwrap());
    let (before, after) = (it.next()?, it.next()?);
    (before >= 80).then_some((before, after))
}

/// A build step's fsyncs are answered at once (kiln syncs the step's
/// writes itself, once, before the cache records): the 96 MiB a step
/// wrote are still dirty after its `sync`. A container's are real.
#[test]
fn build_steps_sync_once_at_the_end_containers_sync_for_real() {
    let k = kiln();
    let mut in_build = None;
    for attempt in 0..5 {
        k.write_ctx(
            "Dockerfile",
            format!("FROM busybox\nRUN ({DIRTY_AROUND_SYNC}) > /dirty && rm /f # {attempt}\n"),
        );
        k.build(&["-t", "sync"]);
        in_build = dirty(&k.run_rm(&["sync", "cat", "/dirty"]));
        if in_build.is_some() {
            break;
        }
    }
    let (before, after) = in_build.expect("a build step's writes stay dirty until its sync");
    assert!(
        after * 2 > before,
        "a build step's sync wrote its data: {before} MiB dirty before, {after} after"
    );
    let mut in_run = None;
    for _ in 0..5 {
        in_run = dirty(&k.run_rm(&["busybox", "sh", "-c", DIRTY_AROUND_SYNC]));
        if in_run.is_some() {
            break;
        }
    }
    let (before, after) = in_run.expect("a container's writes stay dirty until its sync");
    assert!(
        after * 2 < before,
        "a container's sync did not sync: {before} MiB dirty before, {after} after"
    );
}
