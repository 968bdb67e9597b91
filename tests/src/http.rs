//! A local HTTP server for the alert tests: it answers every connection (each on its own
//! thread, so a hanging answer blocks nothing else) as a script says, until stopped, and
//! records each request with when it came and whether a watched file existed then.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// What the server answers to the n-th request (from 0).
#[derive(Clone, Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
    /// Wait this long before answering (nothing is answered when it is longer than the
    /// client's timeout).
    pub delay: Duration,
}

impl Reply {
    /// An answer with a status and a body.
    pub fn status(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    /// The same answer with a header.
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// An answer that comes only after `delay`.
    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

/// One request as the server received it.
#[derive(Clone, Debug)]
pub struct Hit {
    /// `POST /hook HTTP/1.1`.
    pub request_line: String,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body, parsed as JSON.
    pub body: Value,
    /// When it arrived.
    pub at: Instant,
    /// Whether the watched file existed when it arrived.
    pub watched_existed: bool,
}

type Script = dyn Fn(usize) -> Reply + Send + Sync;

/// A running server.
pub struct Server {
    /// Its address.
    pub addr: SocketAddr,
    hits: Arc<Mutex<Vec<Hit>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts a server answering as `script` says; `watch` is a file whose existence each
    /// request records.
    pub fn start(
        watch: Option<PathBuf>,
        script: impl Fn(usize) -> Reply + Send + Sync + 'static,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let hits = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let script: Arc<Script> = Arc::new(script);
        let (log, halt) = (Arc::clone(&hits), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let count = Arc::new(AtomicUsize::new(0));
            while !halt.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (log, script, count, watch) = (
                            Arc::clone(&log),
                            Arc::clone(&script),
                            Arc::clone(&count),
                            watch.clone(),
                        );
                        std::thread::spawn(move || {
                            serve(stream, &log, &*script, &count, watch);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Server {
            addr,
            hits,
            stop,
            thread: Some(thread),
        }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The requests received so far, in order of arrival.
    pub fn hits(&self) -> Vec<Hit> {
        let mut hits = self.hits.lock().expect("hits").clone();
        hits.sort_by_key(|h| h.at);
        hits
    }

    /// Stops it; the requests received, in order of arrival.
    pub fn stop(mut self) -> Vec<Hit> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("server thread");
        }
        let mut hits = self.hits.lock().expect("hits").clone();
        hits.sort_by_key(|h| h.at);
        hits
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(
    stream: TcpStream,
    log: &Mutex<Vec<Hit>>,
    script: &Script,
    count: &AtomicUsize,
    watch: Option<PathBuf>,
) {
    let _ = stream.set_nonblocking(false);
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let at = Instant::now();
    let watched_existed = watch.is_some_and(|w| w.exists());
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end().to_string();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let n = count.fetch_add(1, Ordering::SeqCst);
    log.lock().expect("log").push(Hit {
        request_line: request_line.trim_end().to_string(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        at,
        watched_existed,
    });
    let reply = script(n);
    std::thread::sleep(reply.delay);
    let mut stream = reader.into_inner();
    let mut head = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let _ = write!(stream, "{head}\r\n{}", reply.body);
}
