//! Progress on long work, for a person at a terminal: drawn on stderr only when stderr is a
//! terminal, and never with `--json` or `--quiet` (scripts read stdout and exit codes, and a
//! redirected stderr gets no control characters).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use weft_engine::executor::observe::Observer;
use weft_engine::store::{ExecStatus, TaskStatus};

/// Whether progress is drawn: stderr is a terminal, and neither `--json` nor `--quiet` asked
/// for quiet output.
pub fn wanted(json: bool, quiet: bool) -> bool {
    !json && !quiet && std::io::stderr().is_terminal()
}

/// A bar (or a spinner when the length is unknown) for one piece of long work; does nothing
/// when progress is not [`wanted`].
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// `len` steps of `what` (e.g. "files deployed"); a spinner when `len` is `None`.
    pub fn new(shown: bool, len: Option<u64>, what: &str) -> Progress {
        if !shown {
            return Progress { bar: None };
        }
        let bar = match len {
            Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr())
                .with_style(
                    ProgressStyle::with_template("{bar:30} {pos}/{len} {prefix} {wide_msg}")
                        .expect("a valid template"),
                ),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
                ProgressStyle::with_template("{spinner} {prefix} {elapsed} {wide_msg}")
                    .expect("a valid template"),
            ),
        };
        bar.set_prefix(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress { bar: Some(bar) }
    }

    /// A spinner for work of unknown length (`what`: "purging executions").
    pub fn spinner(shown: bool, what: &str) -> Progress {
        Progress::new(shown, None, what)
    }

    /// Shows what `status` says, read again every quarter second until the bar is finished
    /// (e.g. requests sent so far).
    pub fn follow(&self, status: impl Fn() -> String + Send + 'static) {
        if let Some(b) = self.bar.clone() {
            tokio::spawn(async move {
                while !b.is_finished() {
                    b.set_message(status());
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            });
        }
    }

    /// `n` more steps done.
    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// What is being done now (a file name, a record kind).
    pub fn message(&self, m: impl Into<String>) {
        if let Some(b) = &self.bar {
            b.set_message(m.into());
        }
    }

    /// Prints a line on stderr above the bar.
    pub fn println(&self, line: impl AsRef<str>) {
        match &self.bar {
            Some(b) => b.println(line.as_ref()),
            None => eprintln!("{}", line.as_ref()),
        }
    }

    /// Prints lines above the bar from elsewhere (another task, a callback); prints nothing
    /// when no bar is shown.
    pub fn printer(&self) -> Printer {
        Printer(self.bar.clone())
    }

    /// Removes the bar (what was printed stays).
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Lines above a [`Progress`] bar, only while one is drawn (see [`Progress::printer`]).
#[derive(Clone)]
pub struct Printer(Option<ProgressBar>);

impl Printer {
    /// Prints `line` above the bar, when there is one.
    pub fn println(&self, line: impl AsRef<str>) {
        if let Some(b) = &self.0 {
            b.println(line.as_ref());
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `weft run`'s live view: a spinner per running task, and a line per task as it ends
/// (sub-workflows' tasks under their workflow's name).
pub struct LiveTasks {
    root: Mutex<String>,
    bars: MultiProgress,
    /// Per workflow and task, the bars of its runs now (a sub-workflow's items run the same
    /// task side by side).
    running: Mutex<HashMap<(String, String), Vec<ProgressBar>>>,
}

impl LiveTasks {
    /// The view of a run of `workflow` (named later with [`LiveTasks::run_of`] when not known
    /// yet).
    pub fn new(workflow: &str) -> LiveTasks {
        LiveTasks {
            root: Mutex::new(workflow.to_string()),
            bars: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            running: Mutex::new(HashMap::new()),
        }
    }

    /// The run's own workflow: the others' tasks are shown under their workflow's name.
    pub fn run_of(&self, workflow: &str) {
        *self.root.lock().unwrap() = workflow.to_string();
    }

    fn name(&self, workflow: &str, task: &str) -> String {
        if *self.root.lock().unwrap() == workflow {
            task.to_string()
        } else {
            format!("{workflow} › {task}")
        }
    }
}

/// The mark and word of a task's outcome.
fn outcome(status: TaskStatus) -> (&'static str, &'static str) {
    match status {
        TaskStatus::Succeeded => ("✓", "succeeded"),
        TaskStatus::Failed => ("✗", "failed"),
        TaskStatus::Skipped => ("-", "skipped"),
        TaskStatus::Cancelled => ("✗", "cancelled"),
        _ => ("·", "ended"),
    }
}

impl Observer for LiveTasks {
    fn task_started(&self, workflow: &str, task: &str) {
        let bar = self.bars.add(ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("a valid template"),
        ));
        bar.set_message(self.name(workflow, task));
        bar.enable_steady_tick(Duration::from_millis(120));
        self.running
            .lock()
            .unwrap()
            .entry((workflow.to_string(), task.to_string()))
            .or_default()
            .push(bar);
    }

    fn task_finished(&self, workflow: &str, task: &str, status: TaskStatus, duration: Duration) {
        let bar = {
            let mut running = self.running.lock().unwrap();
            let key = (workflow.to_string(), task.to_string());
            match running.get_mut(&key) {
                Some(bars) if bars.len() > 1 => Some(bars.remove(0)),
                Some(_) => running.remove(&key).and_then(|mut bars| bars.pop()),
                None => None,
            }
        };
        let (mark, word) = outcome(status);
        let line = format!(
            "{mark} {} {word} in {}",
            self.name(workflow, task),
            human(duration)
        );
        match bar {
            Some(b) => {
                b.finish_and_clear();
                self.bars.remove(&b);
                let _ = self.bars.println(line);
            }
            None => {
                let _ = self.bars.println(line);
            }
        }
    }

    fn execution_finished(&self, workflow: &str, _status: ExecStatus, _duration: Duration) {
        if *self.root.lock().unwrap() == workflow {
            let _ = self.bars.clear();
        }
    }
}

/// `850 ms`, `3.2 s`, `2 min 5 s`.
fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human(Duration::from_millis(850)), "850 ms");
        assert_eq!(human(Duration::from_millis(3_240)), "3.2 s");
        assert_eq!(human(Duration::from_secs(125)), "2 min 5 s");
    }

    #[test]
    fn the_same_task_running_twice_at_once_keeps_a_bar_each() {
        let live = LiveTasks::new("main");
        live.task_started("child", "fetch");
        live.task_started("child", "fetch");
        live.task_finished("child", "fetch", TaskStatus::Succeeded, Duration::ZERO);
        assert_eq!(
            live.running.lock().unwrap()[&("child".into(), "fetch".into())].len(),
            1
        );
        live.task_finished("child", "fetch", TaskStatus::Succeeded, Duration::ZERO);
        assert!(live.running.lock().unwrap().is_empty());
    }

    #[test]
    fn a_sub_workflow_task_is_named_under_its_workflow() {
        let live = LiveTasks::new("main");
        assert_eq!(live.name("main", "fetch"), "fetch");
        assert_eq!(live.name("child", "fetch"), "child › fetch");
    }
}
