//! Network namespaces, veth pairs, processes and temporary directories with guaranteed clean-up.
//!
//! Every test and the lab build their hosts from these pieces. Each piece is a drop guard: a
//! namespace deletes itself and stops every process still inside it (by PID), a [`Proc`] stops its
//! process (by PID), a [`TempDir`] removes itself. A test that panics therefore leaves nothing
//! behind, and namespaces left by a test process that was killed outright are swept by the next
//! [`Netns::new`] (their name carries the PID of the process that made them).

use std::ffi::OsStr;
use std::fs::File;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::sys;

/// Prefix of every namespace made by [`Netns::new`]; the sweep only ever touches these.
pub const TEST_PREFIX: &str = "cpvt-";

/// Errors of the lab's plumbing. They carry the command and its stderr so a failing test says why.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A command could not be started at all.
    #[error("cannot run {command}: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why it could not start.
        source: std::io::Error,
    },
    /// A command ran and failed.
    #[error("{command} failed ({status}): {stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// Something did not happen in time.
    #[error("timed out after {0:?}: {1}")]
    Timeout(Duration, String),
    /// Any other I/O failure (files, namespaces).
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

/// Result type of the lab.
pub type Result<T> = std::result::Result<T, LabError>;

/// Panics with a clear message unless the process runs as root. Network tests call it first, so
/// that a run without root fails loudly instead of skipping.
pub fn require_root(why: &str) {
    assert!(
        sys::is_root(),
        "this test must run as root ({why}); run the README's test command as root"
    );
}

/// Panics with a clear message unless `binary` is on the PATH (or is an existing path).
pub fn require_binary(binary: &str, install_hint: &str) {
    assert!(
        find_binary(binary).is_some(),
        "`{binary}` is not installed; install it with: {install_hint}"
    );
}

/// Sends `signal` to a process the lab started or found in one of its own namespaces (a
/// keepalived child, every process of a frozen node).
pub fn signal_pid(pid: i32, signal: i32) -> Result<()> {
    sys::kill(pid, signal).map_err(|e| LabError::Io(format!("kill {signal} {pid}"), e))
}

/// Looks `binary` up like a shell would.
pub fn find_binary(binary: &str) -> Option<PathBuf> {
    if binary.contains('/') {
        return Path::new(binary).exists().then(|| PathBuf::from(binary));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(binary))
        .find(|candidate| candidate.is_file())
}

/// Runs a command to completion and returns its stdout, or an error with its stderr.
pub fn run<S: AsRef<OsStr>>(argv: &[S]) -> Result<String> {
    let output = run_output(argv)?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(LabError::Failed {
            command: display(argv),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// Runs a command to completion and returns its whole output, whatever its status.
pub fn run_output<S: AsRef<OsStr>>(argv: &[S]) -> Result<Output> {
    let (program, args) = argv.split_first().ok_or_else(|| LabError::Spawn {
        command: String::new(),
        source: std::io::Error::other("empty command"),
    })?;
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| LabError::Spawn {
            command: display(argv),
            source,
        })
}

fn display<S: AsRef<OsStr>>(argv: &[S]) -> String {
    argv.iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Polls `check` every `every` until it returns true or `timeout` passes. Returns whether it did.
pub fn wait_until(timeout: Duration, every: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(every);
    }
}

fn unique_suffix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A network namespace owned by this process. Dropping it stops every process inside (by PID)
/// and deletes it.
#[derive(Debug)]
pub struct Netns {
    name: String,
    keep: bool,
}

impl Netns {
    /// Makes a namespace named `cpvt-<tag>-<pid>-<n>` with its loopback up.
    pub fn new(tag: &str) -> Result<Self> {
        static SWEEP: Once = Once::new();
        SWEEP.call_once(sweep_stale);
        Self::create(format!("{TEST_PREFIX}{tag}-{}", unique_suffix()))
    }

    /// Makes a namespace with exactly this name (the lab's long-lived hosts use fixed names).
    pub fn create(name: String) -> Result<Self> {
        run(&["ip", "netns", "add", &name])?;
        let ns = Self { name, keep: false };
        ns.exec(&["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Takes over an existing namespace by name (for `cpvip-lab down`).
    pub fn adopt(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            keep: false,
        }
    }

    /// Leaves the namespace in place when dropped (the lab's `up` hands it to a later `down`).
    pub fn keep(mut self) -> Self {
        self.keep = true;
        self
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Builds the argv that runs `argv` inside this namespace.
    pub fn argv<S: AsRef<OsStr>>(&self, argv: &[S]) -> Vec<std::ffi::OsString> {
        let mut full: Vec<std::ffi::OsString> = ["ip", "netns", "exec", self.name.as_str()]
            .iter()
            .map(Into::into)
            .collect();
        full.extend(argv.iter().map(|a| a.as_ref().to_owned()));
        full
    }

    /// Runs a command inside the namespace and returns its stdout (error on non-zero exit).
    pub fn exec<S: AsRef<OsStr>>(&self, argv: &[S]) -> Result<String> {
        run(&self.argv(argv))
    }

    /// Runs a command inside the namespace and returns its output whatever its status.
    pub fn exec_output<S: AsRef<OsStr>>(&self, argv: &[S]) -> Result<Output> {
        run_output(&self.argv(argv))
    }

    /// Starts a long-running process inside the namespace. Its stdout and stderr go to `log` when
    /// given (appended), else nowhere.
    pub fn spawn<S: AsRef<OsStr>>(&self, argv: &[S], log: Option<&Path>) -> Result<Proc> {
        Proc::spawn(&self.argv(argv), log, &[])
    }

    /// Like [`Netns::spawn`], with extra environment variables.
    pub fn spawn_env<S: AsRef<OsStr>>(
        &self,
        argv: &[S],
        log: Option<&Path>,
        env: &[(String, String)],
    ) -> Result<Proc> {
        Proc::spawn(&self.argv(argv), log, env)
    }

    /// Runs `f` on a new thread that has entered this namespace; sockets it creates belong here.
    pub fn enter<F, R>(&self, f: F) -> Result<R>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        let path = format!("/run/netns/{}", self.name);
        let file = File::open(&path).map_err(|e| LabError::Io(path.clone(), e))?;
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    sys::setns_net(&file).map_err(|e| LabError::Io(format!("setns {path}"), e))?;
                    Ok(f())
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Starts `f` on a detached thread that has entered this namespace (for probes and servers
    /// that run while the caller injects failures). The thread's result comes back by `join`.
    pub fn spawn_thread<F, R>(&self, f: F) -> Result<std::thread::JoinHandle<Result<R>>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let path = format!("/run/netns/{}", self.name);
        let file = File::open(&path).map_err(|e| LabError::Io(path.clone(), e))?;
        Ok(std::thread::spawn(move || {
            sys::setns_net(&file).map_err(|e| LabError::Io(format!("setns {path}"), e))?;
            Ok(f())
        }))
    }

    /// Runs an async scenario inside this namespace on a fresh two-worker tokio runtime. Every
    /// runtime thread is created from the namespaced thread, so every socket and netlink handle
    /// the scenario creates belongs to this namespace.
    pub fn block_on<F, Fut, R>(&self, make: F) -> Result<R>
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = R>,
        R: Send,
    {
        self.enter(|| {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| LabError::Io("tokio runtime".into(), e))?;
            Ok(runtime.block_on(make()))
        })?
    }

    /// PIDs of every process whose network namespace is this one.
    pub fn pids(&self) -> Vec<i32> {
        pids_in(&self.name)
    }

    /// Makes a Linux bridge named `name` inside the namespace and brings it up.
    pub fn add_bridge(&self, name: &str) -> Result<()> {
        self.exec(&["ip", "link", "add", name, "type", "bridge"])?;
        // No STP delay: ports forward at once.
        self.exec(&[
            "ip",
            "link",
            "set",
            name,
            "type",
            "bridge",
            "forward_delay",
            "0",
            "stp_state",
            "0",
        ])?;
        self.exec(&["ip", "link", "set", name, "up"])?;
        Ok(())
    }

    /// Adds an address (`10.0.0.1/24`, `fd00::1/64`) to an interface. IPv6 skips DAD so the
    /// address is usable at once.
    pub fn add_addr(&self, dev: &str, cidr: &str) -> Result<()> {
        if cidr.contains(':') {
            self.exec(&["ip", "addr", "add", cidr, "dev", dev, "nodad"])?;
        } else {
            self.exec(&["ip", "addr", "add", cidr, "dev", dev])?;
        }
        Ok(())
    }

    /// Turns on IPv4 and IPv6 forwarding (for router namespaces).
    pub fn enable_forwarding(&self) -> Result<()> {
        self.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
        self.exec(&["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"])?;
        Ok(())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if !self.keep {
            destroy(&self.name);
        }
    }
}

/// Stops every process in namespace `name` (SIGTERM, then SIGKILL) and deletes it.
pub fn destroy(name: &str) {
    let pids = pids_in(name);
    for pid in &pids {
        let _ = sys::kill(*pid, libc::SIGTERM);
    }
    if !pids.is_empty() {
        wait_until(Duration::from_secs(2), Duration::from_millis(20), || {
            pids_in(name).is_empty()
        });
        for pid in pids_in(name) {
            let _ = sys::kill(pid, libc::SIGKILL);
        }
        wait_until(Duration::from_secs(2), Duration::from_millis(20), || {
            pids_in(name).is_empty()
        });
    }
    let _ = run(&["ip", "netns", "del", name]);
}

fn pids_in(name: &str) -> Vec<i32> {
    run(&["ip", "netns", "pids", name])
        .map(|out| {
            out.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Deletes test namespaces whose creating process no longer exists (a test run killed outright).
fn sweep_stale() {
    let Ok(list) = run(&["ip", "netns", "list"]) else {
        return;
    };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(rest) = name.strip_prefix(TEST_PREFIX) else {
            continue;
        };
        // cpvt-<tag>-<pid>-<n>: the PID is the second field from the end.
        let mut fields = rest.rsplit('-');
        let (_n, pid) = (
            fields.next(),
            fields.next().and_then(|p| p.parse::<u32>().ok()),
        );
        if let Some(pid) = pid
            && pid != std::process::id()
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            destroy(name);
        }
    }
}

/// Connects namespace `a` (interface `a_if`) and `b` (interface `b_if`) with a veth pair and
/// brings both ends up. The pair is created inside `a`, so no name ever appears in the host's
/// namespace and parallel tests cannot collide.
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) -> Result<()> {
    a.exec(&[
        "ip",
        "link",
        "add",
        a_if,
        "type",
        "veth",
        "peer",
        "name",
        b_if,
        "netns",
        b.name(),
    ])?;
    a.exec(&["ip", "link", "set", a_if, "up"])?;
    b.exec(&["ip", "link", "set", b_if, "up"])?;
    Ok(())
}

/// A process started by the lab. Dropping it stops it by PID: SIGTERM, then SIGKILL after 2 s.
#[derive(Debug)]
pub struct Proc {
    child: std::process::Child,
    command: String,
}

impl Proc {
    /// Starts `argv` with stdio to `log` (appended) or nowhere.
    pub fn spawn<S: AsRef<OsStr>>(
        argv: &[S],
        log: Option<&Path>,
        env: &[(String, String)],
    ) -> Result<Self> {
        let command = display(argv);
        let (program, args) = argv.split_first().ok_or_else(|| LabError::Spawn {
            command: command.clone(),
            source: std::io::Error::other("empty command"),
        })?;
        let mut cmd = Command::new(program);
        cmd.args(args).stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        match log {
            Some(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| LabError::Io(path.display().to_string(), e))?;
                let err = file
                    .try_clone()
                    .map_err(|e| LabError::Io(path.display().to_string(), e))?;
                cmd.stdout(file).stderr(err);
            }
            None => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        let child = cmd.spawn().map_err(|source| LabError::Spawn {
            command: command.clone(),
            source,
        })?;
        Ok(Self { child, command })
    }

    /// The process ID.
    pub fn pid(&self) -> i32 {
        // A PID always fits in i32 on Linux (pid_max <= 2^22).
        i32::try_from(self.child.id()).unwrap_or(i32::MAX)
    }

    /// Sends a signal (SIGSTOP, SIGCONT, SIGTERM, SIGKILL...) to the process.
    pub fn signal(&self, signal: i32) -> Result<()> {
        signal_pid(self.pid(), signal)
    }

    /// Whether the process has exited, with its status if so.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let mut status = None;
        wait_until(timeout, Duration::from_millis(10), || {
            status = self.try_wait();
            status.is_some()
        });
        status
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`; returns the exit status.
    pub fn stop(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        if let Some(status) = self.try_wait() {
            return Some(status);
        }
        let _ = self.signal(libc::SIGCONT);
        let _ = self.signal(libc::SIGTERM);
        if let Some(status) = self.wait_timeout(grace) {
            return Some(status);
        }
        let _ = self.signal(libc::SIGKILL);
        self.child.wait().ok()
    }

    /// The command line, for messages.
    pub fn command(&self) -> &str {
        &self.command
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(2));
    }
}

/// A directory under /tmp removed (with its content) when dropped.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Makes `/tmp/cpvt-<tag>-<pid>-<n>`, world-traversable so daemons that drop privileges
    /// (FRR runs as user `frr`) can reach their files.
    pub fn new(tag: &str) -> Result<Self> {
        let path = std::env::temp_dir().join(format!("{TEST_PREFIX}{tag}-{}", unique_suffix()));
        std::fs::create_dir_all(&path).map_err(|e| LabError::Io(path.display().to_string(), e))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| LabError::Io(path.display().to_string(), e))?;
        Ok(Self { path })
    }

    /// Wraps an existing directory (the lab's state directory) so that it is removed on drop.
    pub fn at(path: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&path).map_err(|e| LabError::Io(path.display().to_string(), e))?;
        Ok(Self { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `content` to `name` inside the directory and returns its path.
    pub fn write(&self, name: &str, content: &str) -> Result<PathBuf> {
        let path = self.join(name);
        std::fs::write(&path, content).map_err(|e| LabError::Io(path.display().to_string(), e))?;
        Ok(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
