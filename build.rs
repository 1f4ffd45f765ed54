//! Stamps the binary with the git commit it was built from, for `weft --version`.
//!
//! The commit comes from `git` at build time; a build without git or without a repository
//! (a source tarball, a vendored copy) says `unknown` instead of failing.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let stamp = match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(commit) => {
            watch_git();
            // Only tracked files count: a stray untracked file is not a modified build.
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{commit}, modified")
            } else {
                commit
            }
        }
        None => "unknown".to_string(),
    };
    println!("cargo:rustc-env=WEFT_GIT_COMMIT={stamp}");
}

/// The trimmed stdout of a successful `git ARGS`, run in the crate's directory.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
}

/// Asks cargo to run this script again only when the stamp may have changed: HEAD moved
/// (a checkout, or a commit on the current branch), the index changed, or a source file of
/// the workspace did (which rebuilds the binary anyway). Listing these instead of nothing
/// keeps cargo from rerunning the script on every build.
///
/// In a worktree `.git` is a file naming the real git directory, and branch refs live in the
/// common directory shared by all worktrees, so both are asked of git rather than assumed.
fn watch_git() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let absolute = |p: String| -> PathBuf {
        let p = PathBuf::from(p);
        if p.is_absolute() { p } else { manifest.join(p) }
    };
    let Some(git_dir) = git(&["rev-parse", "--git-dir"]).map(absolute) else {
        return;
    };
    let common = git(&["rev-parse", "--git-common-dir"])
        .map(absolute)
        .unwrap_or_else(|| git_dir.clone());
    watch(&git_dir.join("HEAD"));
    watch(&git_dir.join("index"));
    // A branch ref is a loose file, or a line in packed-refs once git packs it.
    watch(&common.join("packed-refs"));
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch(&common.join(&branch));
    }
    for dir in [
        "src", "engine", "actions", "triggers", "service", "server", "sim",
    ] {
        watch(&manifest.join(dir));
    }
}

fn watch(path: &Path) {
    // A path that does not exist yet (no packed-refs) would make cargo rerun every time.
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
