//! The editor's view of a config: the real `yaml-language-server` (installed by npm into
//! `tests/editor/node_modules`) driven over LSP on stdio, and Node for the Ajv checks. A
//! missing `node` or package fails with the command that installs it.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How to install what these tests run.
pub const INSTALL: &str = "install Node.js 20+ and run `npm ci --prefix tests/editor`";

/// The folder with `package.json` and, once installed, `node_modules`.
pub fn editor_dir() -> PathBuf {
    crate::repo_root().join("tests/editor")
}

/// The `node` command, checked to run.
pub fn node() -> Command {
    let works = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(works, "`node` is not on PATH: {INSTALL}");
    Command::new("node")
}

/// An installed npm package's file, or a failure naming the install command.
pub fn package_file(relative: &str) -> PathBuf {
    let path = editor_dir().join("node_modules").join(relative);
    assert!(path.is_file(), "{} is missing: {INSTALL}", path.display());
    path
}

/// How long one answer of the server may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A running `yaml-language-server --stdio`, initialized with validation and hover on, the
/// schema store off (no network), and schemas taken from each document's modeline.
pub struct LanguageServer {
    child: Child,
    stdin: ChildStdin,
    messages: Receiver<Value>,
    next_id: i64,
    /// Each opening is a new version: the server caches parses by URI and version.
    version: i64,
}

impl LanguageServer {
    /// Starts and initializes the server with `root` as the workspace.
    pub fn start(root: &Path) -> LanguageServer {
        let server = package_file("yaml-language-server/bin/yaml-language-server");
        let mut child = node()
            .arg(server)
            .arg("--stdio")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start yaml-language-server: {e}; {INSTALL}"));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, messages) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            while let Some(message) = read_message(&mut reader) {
                if sender.send(message).is_err() {
                    break;
                }
            }
        });
        let mut server = LanguageServer {
            child,
            stdin,
            messages,
            next_id: 0,
            version: 0,
        };
        let root_uri = file_uri(root);
        server.request(
            "initialize",
            json!({
                "processId": std::process::id(),
                "rootUri": root_uri,
                "capabilities": {
                    "textDocument": {
                        "hover": {"contentFormat": ["markdown", "plaintext"]},
                        "completion": {"completionItem": {"snippetSupport": true}},
                        "publishDiagnostics": {},
                    },
                    "workspace": {"configuration": true},
                },
            }),
        );
        server.notify("initialized", json!({}));
        server.notify(
            "workspace/didChangeConfiguration",
            json!({"settings": {"yaml": settings()}}),
        );
        server
    }

    /// Opens `text` as the document at `path` and returns its diagnostics.
    pub fn diagnostics(&mut self, path: &Path, text: &str) -> Vec<Value> {
        let uri = file_uri(path);
        self.version += 1;
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {
                "uri": uri, "languageId": "yaml", "version": self.version, "text": text,
            }}),
        );
        let found = self.wait_for(|m| {
            m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri
        });
        found["params"]["diagnostics"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Closes the document at `path`.
    pub fn close(&mut self, path: &Path) {
        self.notify(
            "textDocument/didClose",
            json!({"textDocument": {"uri": file_uri(path)}}),
        );
    }

    /// The hover text at a 0-based line and character of an open document (empty: none).
    pub fn hover(&mut self, path: &Path, line: usize, character: usize) -> String {
        let answer = self.request(
            "textDocument/hover",
            json!({
                "textDocument": {"uri": file_uri(path)},
                "position": {"line": line, "character": character},
            }),
        );
        match &answer["contents"] {
            Value::Object(markup) => markup["value"].as_str().unwrap_or_default().to_string(),
            Value::String(text) => text.clone(),
            _ => String::new(),
        }
    }

    /// The completion items at a 0-based line and character of an open document.
    pub fn completion(&mut self, path: &Path, line: usize, character: usize) -> Vec<Value> {
        let answer = self.request(
            "textDocument/completion",
            json!({
                "textDocument": {"uri": file_uri(path)},
                "position": {"line": line, "character": character},
            }),
        );
        match answer {
            Value::Array(items) => items,
            list => list["items"].as_array().cloned().unwrap_or_default(),
        }
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let answer = self.wait_for(|m| m["id"] == id && m.get("method").is_none());
        assert!(
            answer.get("error").is_none(),
            "{method} failed: {}",
            answer["error"]
        );
        answer["result"].clone()
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    fn send(&mut self, message: &Value) {
        let body = message.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len())
            .and_then(|()| self.stdin.flush())
            .expect("yaml-language-server's stdin");
    }

    /// The next message matching `wanted`, answering the server's own requests on the way.
    fn wait_for(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = match self.messages.recv_timeout(left) {
                Ok(message) => message,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("yaml-language-server did not answer within {TIMEOUT:?}")
                }
                Err(RecvTimeoutError::Disconnected) => panic!("yaml-language-server exited"),
            };
            if wanted(&message) {
                return message;
            }
            if let (Some(id), Some(method)) = (message.get("id"), message["method"].as_str()) {
                // workspace/configuration asks for settings per section; anything else
                // (capability registration, progress) needs only an answer.
                let result = match method {
                    "workspace/configuration" => {
                        let items = message["params"]["items"].as_array().map_or(0, Vec::len);
                        Value::Array(vec![settings(); items])
                    }
                    _ => Value::Null,
                };
                self.send(&json!({"jsonrpc": "2.0", "id": id, "result": result}));
            }
        }
    }
}

impl Drop for LanguageServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `yaml` settings of an editor wired as the README says (the schema from the modeline).
fn settings() -> Value {
    json!({
        "validate": true,
        "hover": true,
        "completion": true,
        "schemaStore": {"enable": false},
        "schemas": {},
    })
}

/// One LSP message (Content-Length framing), or `None` at the end of the stream.
fn read_message(reader: &mut impl BufRead) -> Option<Value> {
    let mut length = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(value) = line.strip_prefix("Content-Length:") {
            length = value.trim().parse().ok();
        }
    }
    let mut body = vec![0; length?];
    reader.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

/// The `file://` URI of an absolute path.
pub fn file_uri(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    format!("file://{}", path.display())
}
