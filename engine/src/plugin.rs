//! Dynamic plugins: a rule crate built as a `cdylib` with `declare_plugin!()`, loaded at run
//! time with `libloading` and spoken to through the serialized protocol of
//! [`vigil_rule_api::protocol`]. No Rust type crosses the boundary.
//!
//! Loading, in order, so that nothing is called across an incompatible boundary:
//! 1. `vigil_plugin_protocol`, a C function returning the protocol version; a version this
//!    vigil does not speak is refused naming both versions (a library of protocol 1, vigil
//!    0.1.0's Rust-ABI plugins, is recognised by its `vigil_plugin_abi`);
//! 2. `vigil_plugin_call` with a `describe` request: the plugin's rules, docs and params
//!    schemas, each added to the registry as a rule whose steps are calls into the plugin.
//!
//! Each call runs inside `catch_unwind` in the plugin, so a panic comes back as an error that
//! the run reports as an ERROR finding for that rule. Libraries are never unloaded.

#![allow(unsafe_code)]

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use vigil_rule_api::protocol::{Buffer, Call, Envelope, Reply, API_VERSION, PROTOCOL_VERSION};
use vigil_rule_api::registry::{ParamsError, RuleInfo};
use vigil_rule_api::rule::{Evaluated, Rule, RuleError, RunCtx};

use crate::failed::Failed;
use crate::metric::{MetricRequest, Metrics};

/// `vigil_plugin_protocol`: the protocol version.
type ProtocolFn = unsafe extern "C" fn() -> u32;
/// `vigil_plugin_call`: one request in, one reply buffer out.
type CallFn = unsafe extern "C" fn(*const u8, usize) -> Buffer;
/// `vigil_plugin_free`: frees a reply buffer.
type FreeFn = unsafe extern "C" fn(Buffer);

/// Why a plugin was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginError {
    /// The library.
    pub path: PathBuf,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "plugin {}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for PluginError {}

/// A loaded plugin library (never unloaded).
pub struct Plugin {
    /// Its canonical path.
    pub path: PathBuf,
    /// The protocol version it speaks.
    pub protocol: u32,
    /// The `vigil-rule-api` version it was built with.
    pub api_version: String,
    /// Its rules.
    pub rules: Vec<RuleInfo>,
    call: CallFn,
    free: FreeFn,
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Plugin({})", self.path.display())
    }
}

impl Plugin {
    /// Opens a library and checks that it speaks this vigil's protocol; asks for its rules.
    pub fn open(path: &Path) -> Result<Arc<Plugin>, PluginError> {
        let fail = |message: String| PluginError {
            path: path.to_path_buf(),
            message,
        };
        let canonical = path
            .canonicalize()
            .map_err(|e| fail(format!("cannot be read: {e}")))?;
        if !canonical.is_file() {
            return Err(fail("is not a file".into()));
        }
        // SAFETY: loading a library runs its initialisers. The user named this file as a vigil
        // plugin; nothing of it is called before its protocol version is checked, and the
        // library is never unloaded (it is leaked below), so the functions kept stay valid.
        let library = unsafe { libloading::Library::new(&canonical) }
            .map_err(|e| fail(format!("cannot be loaded as a shared library: {e}")))?;

        // SAFETY: the symbols are looked up with the C signatures `declare_plugin!` gives them;
        // calling a C function that takes nothing and returns an integer is sound whichever
        // compiler built the library.
        let protocol =
            unsafe {
                match library.get::<ProtocolFn>(b"vigil_plugin_protocol\0") {
                    Ok(protocol) => protocol(),
                    Err(_) if library.get::<ProtocolFn>(b"vigil_plugin_abi\0").is_ok() => 1,
                    Err(_) => return Err(fail(
                        "is not a vigil plugin (it exports no `vigil_plugin_protocol`); build the \
                         rule crate as a cdylib with `vigil_rule_api::declare_plugin!()`"
                            .into(),
                    )),
                }
            };
        if protocol != PROTOCOL_VERSION {
            let fix = if protocol < PROTOCOL_VERSION {
                format!(
                    "rebuild the plugin against vigil-rule-api {API_VERSION} (update its \
                     `vigil-rule-api` dependency and build it with `declare_plugin!()`)"
                )
            } else {
                "use a vigil that speaks that protocol (a newer release), or rebuild the plugin \
                 against this vigil's vigil-rule-api"
                    .to_string()
            };
            return Err(fail(format!(
                "speaks plugin protocol {protocol}; this vigil speaks protocol \
                 {PROTOCOL_VERSION}; {fix}"
            )));
        }
        // SAFETY: as above, the C signatures `declare_plugin!` gives these two functions; the
        // function pointers are copied out and stay valid because the library is never
        // unloaded.
        let (call, free) = unsafe {
            let call = *library.get::<CallFn>(b"vigil_plugin_call\0").map_err(|_| {
                fail("speaks the protocol but exports no `vigil_plugin_call`".into())
            })?;
            let free = *library.get::<FreeFn>(b"vigil_plugin_free\0").map_err(|_| {
                fail("speaks the protocol but exports no `vigil_plugin_free`".into())
            })?;
            (call, free)
        };
        // Never unloaded: the functions kept point into the library.
        std::mem::forget(library);
        let mut plugin = Plugin {
            path: canonical,
            protocol,
            api_version: String::new(),
            rules: Vec::new(),
            call,
            free,
        };
        match plugin.request(&Call::Describe).map_err(fail)? {
            Reply::Described { api_version, rules } => {
                plugin.api_version = api_version;
                plugin.rules = rules;
                plugin.rules.sort_by(|a, b| a.id.cmp(&b.id));
            }
            other => return Err(fail(format!("answered `describe` with {}", name(&other)))),
        }
        if plugin.rules.is_empty() {
            return Err(fail("registers no rule".into()));
        }
        Ok(Arc::new(plugin))
    }

    /// Sends one call and reads the reply.
    fn request(&self, call: &Call) -> Result<Reply, String> {
        let request = serde_json::to_vec(&Envelope {
            protocol: PROTOCOL_VERSION,
            body: call,
        })
        .map_err(|e| format!("the request could not be serialized: {e}"))?;
        // SAFETY: `call` has the C signature `declare_plugin!` gives it; the request buffer is
        // ours and lives until the call returns; the plugin catches its own panics, so nothing
        // unwinds across the boundary.
        let buffer = unsafe { (self.call)(request.as_ptr(), request.len()) };
        let bytes = if buffer.ptr.is_null() {
            Vec::new()
        } else {
            // SAFETY: the plugin returned a buffer of `len` initialised bytes that stays valid
            // until we hand it back to `vigil_plugin_free`, which happens right after the copy.
            unsafe { std::slice::from_raw_parts(buffer.ptr, buffer.len) }.to_vec()
        };
        // SAFETY: the buffer came from this library's `vigil_plugin_call` and is freed once.
        unsafe { (self.free)(buffer) };
        let envelope: Envelope<Reply> = serde_json::from_slice(&bytes)
            .map_err(|e| format!("answered something this vigil cannot read: {e}"))?;
        if envelope.protocol != PROTOCOL_VERSION {
            return Err(format!(
                "answered in protocol {}, this vigil speaks {PROTOCOL_VERSION}",
                envelope.protocol
            ));
        }
        Ok(envelope.body)
    }

    /// Builds rule `id` from its params inside the plugin.
    pub fn build(self: &Arc<Self>, id: &str, params: Value) -> Result<Box<dyn Rule>, ParamsError> {
        let call = Call::Build {
            rule: id.to_string(),
            params,
        };
        let broken = |error| Ok(Box::new(Failed(error)) as Box<dyn Rule>);
        match self.request(&call) {
            Ok(Reply::Built {
                instance,
                lookback_days,
            }) => Ok(Box::new(PluginRule {
                plugin: Arc::clone(self),
                instance,
                lookback_days,
                planned: Mutex::new(Vec::new()),
            })),
            Ok(Reply::ParamsRefused { error }) => Err(error),
            Ok(Reply::Failed { error }) => broken(error),
            Ok(other) => broken(RuleError::Plugin {
                message: format!("answered `build` with {}", name(&other)),
            }),
            Err(message) => broken(RuleError::Plugin { message }),
        }
    }
}

/// The name of a reply, for messages.
fn name(reply: &Reply) -> String {
    match reply {
        Reply::Refused { message } => format!("a refusal: {message}"),
        other => serde_json::to_value(other)
            .ok()
            .and_then(|v| v["reply"].as_str().map(|s| format!("`{s}`")))
            .unwrap_or_else(|| "an unexpected reply".into()),
    }
}

/// A rule that lives in a plugin: each step is a call.
struct PluginRule {
    plugin: Arc<Plugin>,
    instance: u64,
    /// How far its baselines reach back, as the plugin said when it built the rule.
    lookback_days: u32,
    /// The requests of the last plan: only their metrics are sent to `evaluate`.
    planned: Mutex<Vec<MetricRequest>>,
}

impl Rule for PluginRule {
    fn lookback_days(&self) -> u32 {
        self.lookback_days
    }

    fn plan(&self, cx: &RunCtx) -> Result<Vec<MetricRequest>, RuleError> {
        let call = Call::Plan {
            instance: self.instance,
            ctx: cx.clone(),
        };
        match self.plugin.request(&call) {
            Ok(Reply::Planned { requests }) => {
                *self.planned.lock().unwrap_or_else(|p| p.into_inner()) = requests.clone();
                Ok(requests)
            }
            Ok(Reply::Failed { error }) => Err(error),
            Ok(other) => Err(RuleError::Plugin {
                message: format!("answered `plan` with {}", name(&other)),
            }),
            Err(message) => Err(RuleError::Plugin { message }),
        }
    }

    fn evaluate(&self, cx: &RunCtx, metrics: &Metrics) -> Result<Evaluated, RuleError> {
        let planned = self
            .planned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let call = Call::Evaluate {
            instance: self.instance,
            ctx: cx.clone(),
            metrics: metrics.subset(&planned),
        };
        match self.plugin.request(&call) {
            Ok(Reply::Evaluated { evaluated }) => Ok(evaluated),
            Ok(Reply::Failed { error }) => Err(error),
            Ok(other) => Err(RuleError::Plugin {
                message: format!("answered `evaluate` with {}", name(&other)),
            }),
            Err(message) => Err(RuleError::Plugin { message }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_refused_clearly() {
        let err = Plugin::open(Path::new("/nonexistent/libteam.so")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("plugin /nonexistent/libteam.so: cannot be read:"),
            "{err}"
        );
    }
}
