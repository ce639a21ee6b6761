//! A real `redis-server` for the fleet tests: started on a free loopback port with a
//! fresh temporary directory, no persistence, stopped and removed on drop. Faults are
//! real ones: `pause` (SIGSTOP: the server holds its connections and answers nothing),
//! `kill` (SIGKILL) and `restart` (a new, empty server on the same port).
//!
//! Needs the Debian package `redis-server` (`.ci/run` installs it when missing).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a server may take to answer its first PING.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// One reply of the RESP protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`, `+PONG`.
    Status(String),
    /// `-ERR ...`.
    Error(String),
    /// `:42`.
    Integer(i64),
    /// `$n` bytes (`None`: the null bulk string).
    Bulk(Option<Vec<u8>>),
    /// `*n` replies (`None`: the null array).
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The bulk string as UTF-8 text, if it is one.
    pub fn text(&self) -> Option<String> {
        match self {
            Reply::Bulk(Some(bytes)) => Some(String::from_utf8_lossy(bytes).into_owned()),
            Reply::Status(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// The elements of an array reply (empty for anything else).
    pub fn items(&self) -> Vec<Reply> {
        match self {
            Reply::Array(Some(items)) => items.clone(),
            _ => Vec::new(),
        }
    }
}

/// A running `redis-server` child process; killed and its directory removed on drop.
pub struct RedisServer {
    binary: PathBuf,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    paused: bool,
    /// More `redis-server` arguments (TLS, say), given to every start.
    extra_args: Vec<String>,
    /// Arguments of the last `restart_with`, given to the current process only.
    restart_args: Vec<String>,
}

impl RedisServer {
    /// Starts a server on a free loopback port and waits until it answers PING.
    ///
    /// # Panics
    /// When `redis-server` is not installed, or does not start.
    pub fn start() -> Self {
        Self::start_with_args(Vec::new())
    }

    /// As [`start`](Self::start), with more `redis-server` arguments (kept for
    /// [`restart`](Self::restart)).
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub fn start_with_args(extra_args: Vec<String>) -> Self {
        let binary = find_binary();
        // A port picked free can be taken by another test before the server binds it:
        // a few attempts, each with a new port.
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port();
            let dir = fresh_dir(port);
            let mut server = RedisServer {
                binary: binary.clone(),
                port,
                dir,
                child: None,
                paused: false,
                extra_args: extra_args.clone(),
                restart_args: Vec::new(),
            };
            match server.spawn() {
                Ok(()) => return server,
                Err(e) => last_error = e,
            }
        }
        panic!("redis-server did not start: {last_error}");
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id of the running server.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server is running").id()
    }

    /// Stops the process (SIGSTOP): connections stay open, nothing is answered.
    pub fn pause(&mut self) {
        signal(self.pid(), "-STOP");
        self.paused = true;
    }

    /// Continues a paused process (SIGCONT).
    pub fn resume(&mut self) {
        signal(self.pid(), "-CONT");
        self.paused = false;
    }

    /// Kills the process (SIGKILL) and waits for it: every connection is reset.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused = false;
    }

    /// A new, empty server on the same port (the old one killed first if running).
    ///
    /// # Panics
    /// When the new server does not start.
    pub fn restart(&mut self) {
        self.restart_with(&[]);
    }

    /// As [`restart`](Self::restart), the new server started with more arguments (beside
    /// those of [`start_with_args`](Self::start_with_args)), in force before it accepts a
    /// connection (`--user <name> <rules>..`: a replacement configured as the old one was).
    pub fn restart_with(&mut self, args: &[&str]) {
        self.restart_args = args.iter().map(|a| (*a).to_owned()).collect();
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
        std::fs::create_dir_all(&self.dir).expect("a temporary directory");
        // The port was just released; the kernel may take a moment to let it go.
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => {
                    panic!("redis-server did not restart on port {}: {e}", self.port)
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Whether the server answers PING within `timeout`.
    pub fn ping(&self, timeout: Duration) -> bool {
        matches!(
            self.command_within(&["PING"], timeout),
            Ok(Reply::Status(s)) if s == "PONG"
        )
    }

    /// Sends one command on a new connection and reads its reply (2 s timeout).
    pub fn command(&self, args: &[&str]) -> Result<Reply, String> {
        self.command_within(args, Duration::from_secs(2))
    }

    /// As [`command`](Self::command), with binary arguments.
    pub fn command_bytes(&self, args: &[&[u8]]) -> Result<Reply, String> {
        command_on(self.port, args, Duration::from_secs(2))
    }

    fn command_within(&self, args: &[&str], timeout: Duration) -> Result<Reply, String> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        command_on(self.port, &args, timeout)
    }

    /// Whether the server answering on `self.port` is this one's process (a port that was
    /// free a moment ago may have gone to another test's server). A server whose default
    /// user may not run `INFO` is taken at its PONG.
    fn answers_as_ours(&self) -> bool {
        let Some(pid) = self.child.as_ref().map(Child::id) else {
            return false;
        };
        match self.command_within(&["INFO", "server"], Duration::from_millis(500)) {
            Ok(Reply::Bulk(Some(text))) => {
                String::from_utf8_lossy(&text).contains(&format!("process_id:{pid}\r\n"))
            }
            _ => true,
        }
    }

    /// Starts the process on `self.port` and waits for PONG; on failure, the log.
    fn spawn(&mut self) -> Result<(), String> {
        let log = self.dir.join("redis.log");
        let child = Command::new(&self.binary)
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--protected-mode", "no"])
            .arg("--logfile")
            .arg(&log)
            .args(&self.extra_args)
            .args(&self.restart_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.binary.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self.ping(Duration::from_millis(500)) {
                if self.answers_as_ours() {
                    return Ok(());
                }
                self.kill();
                return Err(format!(
                    "port {} is held by another redis-server",
                    self.port
                ));
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                self.kill();
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(format!("port {}: {exited:?}\n{text}", self.port));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill(); // SIGKILL ends a stopped process too
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `redis-server` on PATH, else `/usr/bin/redis-server`.
fn find_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("redis-server"))
            .find(|candidate| candidate.is_file())
    });
    let fallback = Path::new("/usr/bin/redis-server");
    match on_path {
        Some(path) => path,
        None if fallback.is_file() => fallback.to_path_buf(),
        None => panic!(
            "redis-server is not installed: the fleet tests run a real Redis. Install the \
             Debian package `redis-server` (`apt-get install redis-server`; `.ci/run` does)"
        ),
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn fresh_dir(port: u16) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "eg-redis-{}-{}-{port}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}

fn signal(pid: u32, which: &str) {
    let status = Command::new("kill")
        .args([which, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {which} {pid} failed");
}

/// One command on a new connection to `127.0.0.1:port`.
fn command_on(port: u16, args: &[&[u8]], timeout: Duration) -> Result<Reply, String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    let mut request = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        request.extend_from_slice(arg);
        request.extend_from_slice(b"\r\n");
    }
    stream.write_all(&request).map_err(|e| e.to_string())?;
    read_reply(&mut BufReader::new(stream))
}

fn read_reply(reader: &mut BufReader<TcpStream>) -> Result<Reply, String> {
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| e.to_string())?;
    let line = line.trim_end_matches("\r\n");
    let (kind, rest) = line.split_at_checked(1).ok_or("connection closed")?;
    let number = || rest.parse::<i64>().map_err(|e| format!("{line:?}: {e}"));
    Ok(match kind {
        "+" => Reply::Status(rest.to_owned()),
        "-" => Reply::Error(rest.to_owned()),
        ":" => Reply::Integer(number()?),
        "$" => match number()? {
            n if n < 0 => Reply::Bulk(None),
            n => {
                let mut bytes = vec![0; n as usize + 2];
                reader.read_exact(&mut bytes).map_err(|e| e.to_string())?;
                bytes.truncate(n as usize);
                Reply::Bulk(Some(bytes))
            }
        },
        "*" => match number()? {
            n if n < 0 => Reply::Array(None),
            n => Reply::Array(Some(
                (0..n)
                    .map(|_| read_reply(reader))
                    .collect::<Result<_, _>>()?,
            )),
        },
        _ => return Err(format!("not a RESP reply: {line:?}")),
    })
}
