//! Real routers in namespaces: BIRD 2 and FRR, each with its own control sockets in a per-test
//! directory so that any number of them run side by side, started and stopped by PID.
//!
//! Neither needs systemd: BIRD runs in the foreground with `-f`, FRR's daemons are started one by
//! one with explicit socket paths (see `shared/research/netns-lab.md`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::netns::{LabError, Netns, Proc, Result, require_binary, run, wait_until};

/// How long a router may take to create its control socket.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A BIRD 2 instance running in a namespace.
#[derive(Debug)]
pub struct Bird {
    proc: Proc,
    ctl: PathBuf,
    log: PathBuf,
}

impl Bird {
    /// Writes `config` to `dir/bird.conf` and starts BIRD with its control socket at
    /// `dir/bird.ctl`; returns once the socket answers.
    pub fn start(ns: &Netns, dir: &Path, config: &str) -> Result<Self> {
        require_binary("bird", "apt-get install -y bird2");
        let conf = dir.join("bird.conf");
        let ctl = dir.join("bird.ctl");
        let log = dir.join("bird.log");
        std::fs::write(&conf, config).map_err(|e| LabError::Io(conf.display().to_string(), e))?;
        let proc = ns.spawn(
            &[
                "bird".as_ref(),
                "-f".as_ref(),
                "-c".as_ref(),
                conf.as_os_str(),
                "-s".as_ref(),
                ctl.as_os_str(),
                "-P".as_ref(),
                dir.join("bird.pid").as_os_str(),
            ],
            Some(&log),
        )?;
        let mut bird = Self { proc, ctl, log };
        let up = wait_until(START_TIMEOUT, Duration::from_millis(20), || {
            bird.birdc("show status").is_ok()
        });
        if !up {
            let status = bird.proc.try_wait();
            let log = std::fs::read_to_string(&bird.log).unwrap_or_default();
            return Err(LabError::Timeout(
                START_TIMEOUT,
                format!("BIRD did not start ({status:?}): {log}"),
            ));
        }
        Ok(bird)
    }

    /// Runs one `birdc` command (words as separate arguments) and returns its output.
    pub fn birdc(&self, command: &str) -> Result<String> {
        let ctl = self.ctl.to_string_lossy().into_owned();
        let mut argv = vec!["birdc", "-s", ctl.as_str()];
        argv.extend(command.split_whitespace());
        run(&argv)
    }

    /// The BIRD process (to freeze it with SIGSTOP, kill it, read its PID).
    pub fn proc(&self) -> &Proc {
        &self.proc
    }

    /// Mutable access to the process (to stop and wait for it).
    pub fn proc_mut(&mut self) -> &mut Proc {
        &mut self.proc
    }

    /// BIRD's log (stdout/stderr of the process; configure `log stderr all;` to fill it).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The control socket path.
    pub fn ctl(&self) -> &Path {
        &self.ctl
    }
}

/// Which FRR daemons to run besides zebra.
#[derive(Debug, Clone, Copy, Default)]
pub struct FrrDaemons {
    /// Run bgpd.
    pub bgp: bool,
    /// Run bfdd.
    pub bfd: bool,
}

/// Configuration files of an FRR instance (zebra's is always written).
#[derive(Debug, Clone, Default)]
pub struct FrrConfig {
    /// zebra.conf.
    pub zebra: String,
    /// bgpd.conf, used when bgpd runs.
    pub bgpd: String,
    /// bfdd.conf, used when bfdd runs.
    pub bfdd: String,
}

/// An FRR instance (zebra plus bgpd and/or bfdd) running in a namespace.
#[derive(Debug)]
pub struct Frr {
    // Dropped in reverse start order: clients first, zebra last.
    daemons: Vec<Proc>,
    run_dir: PathBuf,
    conf_dir: PathBuf,
}

impl Frr {
    /// Starts zebra, then the requested daemons, with every socket under `dir/frr`.
    pub fn start(ns: &Netns, dir: &Path, daemons: FrrDaemons, config: &FrrConfig) -> Result<Self> {
        require_binary("/usr/lib/frr/zebra", "apt-get install -y frr");
        let run_dir = dir.join("frr");
        let conf_dir = dir.join("frrconf");
        for d in [&run_dir, &conf_dir] {
            std::fs::create_dir_all(d).map_err(|e| LabError::Io(d.display().to_string(), e))?;
        }
        let write = |name: &str, text: &str| -> Result<PathBuf> {
            let path = conf_dir.join(name);
            std::fs::write(&path, text).map_err(|e| LabError::Io(path.display().to_string(), e))?;
            Ok(path)
        };
        write("zebra.conf", &config.zebra)?;
        write("bgpd.conf", &config.bgpd)?;
        write("bfdd.conf", &config.bfdd)?;
        // The daemons drop to user frr: it must own its socket directory and read its configs.
        let run_s = run_dir.to_string_lossy().into_owned();
        let conf_s = conf_dir.to_string_lossy().into_owned();
        run(&["chown", "-R", "frr:frr", run_s.as_str(), conf_s.as_str()])?;

        let mut frr = Self {
            daemons: Vec::new(),
            run_dir,
            conf_dir,
        };
        frr.start_daemon(ns, "zebra", &[])?;
        let zserv = frr.run_dir.join("zserv.api");
        if !wait_until(START_TIMEOUT, Duration::from_millis(20), || zserv.exists()) {
            return Err(LabError::Timeout(
                START_TIMEOUT,
                format!("zebra did not start: {}", frr.logs()),
            ));
        }
        if daemons.bfd {
            let ctl = frr.run_dir.join("bfdd.sock").to_string_lossy().into_owned();
            frr.start_daemon(ns, "bfdd", &["--bfdctl", &ctl])?;
        }
        if daemons.bgp {
            frr.start_daemon(ns, "bgpd", &[])?;
        }
        let names: Vec<&str> = [
            ("zebra", true),
            ("bfdd", daemons.bfd),
            ("bgpd", daemons.bgp),
        ]
        .iter()
        .filter(|d| d.1)
        .map(|d| d.0)
        .collect();
        let ready = wait_until(START_TIMEOUT, Duration::from_millis(50), || {
            names
                .iter()
                .all(|d| frr.run_dir.join(format!("{d}.vty")).exists())
        });
        if !ready {
            return Err(LabError::Timeout(
                START_TIMEOUT,
                format!("FRR daemons did not start: {}", frr.logs()),
            ));
        }
        Ok(frr)
    }

    fn start_daemon(&mut self, ns: &Netns, daemon: &str, extra: &[&str]) -> Result<()> {
        let d = self.run_dir.to_string_lossy().into_owned();
        let conf = self
            .conf_dir
            .join(format!("{daemon}.conf"))
            .to_string_lossy()
            .into_owned();
        let binary = format!("/usr/lib/frr/{daemon}");
        let zserv = format!("{d}/zserv.api");
        let pid = format!("{d}/{daemon}.pid");
        let log = format!("file:{d}/{daemon}.log");
        let mut argv = vec![
            binary.as_str(),
            "-f",
            conf.as_str(),
            "--vty_socket",
            d.as_str(),
            "-z",
            zserv.as_str(),
            "-i",
            pid.as_str(),
            "-P",
            "0",
            "--log",
            log.as_str(),
        ];
        if daemon == "zebra" {
            // Big netlink receive buffer, as FRR's own init script does.
            argv.extend(["-s", "16777216"]);
        }
        argv.extend(extra);
        let stdio = self.run_dir.join(format!("{daemon}.out"));
        self.daemons.push(ns.spawn(&argv, Some(&stdio))?);
        Ok(())
    }

    /// Runs vtysh commands (each one a `-c`) against this instance.
    pub fn vtysh(&self, commands: &[&str]) -> Result<String> {
        let d = self.run_dir.to_string_lossy().into_owned();
        let mut argv = vec!["vtysh", "--vty_socket", d.as_str()];
        for c in commands {
            argv.extend(["-c", c]);
        }
        run(&argv)
    }

    /// The process of one daemon (`zebra`, `bfdd`, `bgpd`), to freeze or kill it.
    pub fn daemon(&self, name: &str) -> Option<&Proc> {
        self.daemons
            .iter()
            .find(|p| p.command().contains(&format!("/usr/lib/frr/{name} ")))
    }

    /// Every daemon's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for name in ["zebra", "bfdd", "bgpd"] {
            for suffix in ["log", "out"] {
                if let Ok(text) =
                    std::fs::read_to_string(self.run_dir.join(format!("{name}.{suffix}")))
                {
                    out.push_str(&format!("--- {name}.{suffix}\n{text}"));
                }
            }
        }
        out
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        while let Some(mut daemon) = self.daemons.pop() {
            daemon.stop(Duration::from_secs(2));
        }
    }
}
