//! Dynamic plugins: a rule crate built as a `cdylib` with `declare_plugin!()`, loaded at run
//! time with `libloading`.
//!
//! The handshake, in order, so that nothing is called across an incompatible boundary:
//! 1. `vigil_plugin_abi`, a C-ABI function returning [`PLUGIN_ABI`];
//! 2. `vigil_plugin_fingerprint`, a C string: engine version, rustc version, target, ABI and the
//!    sizes of the types that cross the boundary; it must equal this engine's [`fingerprint`];
//! 3. only then `vigil_plugin_register` (Rust ABI), which hands over the plugin's rules.
//!
//! Libraries are never unloaded: the rules, their vtables and their `'static` strings live in
//! the library. Neither side may set a global allocator (boxes cross the boundary).

#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::ffi::{c_char, CStr, CString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::metric::{MetricRequest, Metrics};
use crate::registry::{Origin, Registry, RuleRegistration};
use crate::rule::Finding;

/// Version of the plugin boundary; bump it when anything a plugin sees changes.
pub const PLUGIN_ABI: u32 = 1;

/// The C function a plugin exports first: its ABI version.
pub type AbiFn = unsafe extern "C" fn() -> u32;
/// The C function a plugin exports second: its fingerprint, a static NUL-terminated string.
pub type FingerprintFn = unsafe extern "C" fn() -> *const c_char;
/// The Rust function a plugin exports last: hands each of its rules to the callback.
pub type RegisterFn = fn(&mut dyn FnMut(RuleRegistration));

/// What a plugin must match: `engine=…;rustc=…;target=…;abi=…;layout=…`.
pub fn fingerprint() -> String {
    use std::mem::size_of;
    format!(
        "engine={};rustc={};target={};abi={PLUGIN_ABI};layout={}/{}/{}/{}/{}",
        env!("CARGO_PKG_VERSION"),
        env!("VIGIL_RUSTC_VERSION"),
        env!("VIGIL_TARGET"),
        size_of::<Finding>(),
        size_of::<MetricRequest>(),
        size_of::<Metrics>(),
        size_of::<RuleRegistration>(),
        size_of::<serde_json::Value>(),
    )
}

/// [`fingerprint`] as a C string that lives as long as the process (for `declare_plugin!`).
pub fn fingerprint_c() -> *const c_char {
    static FINGERPRINT: OnceLock<CString> = OnceLock::new();
    FINGERPRINT
        .get_or_init(|| CString::new(fingerprint()).expect("no NUL in the fingerprint"))
        .as_ptr()
}

/// Exports the plugin entry points of a rule crate built as a `cdylib`. Put it behind the
/// crate's `dynamic` feature, so the same crate can also be linked statically:
///
/// ```ignore
/// #[cfg(feature = "dynamic")]
/// vigil_engine::declare_plugin!();
/// ```
#[macro_export]
macro_rules! declare_plugin {
    () => {
        /// The plugin ABI version (vigil's plugin handshake, step 1).
        #[allow(unsafe_code)]
        #[no_mangle]
        pub extern "C" fn vigil_plugin_abi() -> u32 {
            $crate::plugin::PLUGIN_ABI
        }

        /// The plugin fingerprint (vigil's plugin handshake, step 2).
        #[allow(unsafe_code)]
        #[no_mangle]
        pub extern "C" fn vigil_plugin_fingerprint() -> *const ::std::ffi::c_char {
            $crate::plugin::fingerprint_c()
        }

        /// Hands this library's rules to the host (vigil's plugin handshake, step 3).
        #[allow(unsafe_code)]
        #[no_mangle]
        pub fn vigil_plugin_register(add: &mut dyn FnMut($crate::registry::RuleRegistration)) {
            for registration in $crate::inventory::iter::<$crate::registry::RuleRegistration> {
                add(*registration);
            }
        }
    };
}

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

const REBUILD: &str = "rebuild the plugin in the vigil workspace (its rust-toolchain.toml and \
                       the same vigil-engine version), or link its crate statically";

/// Loads a plugin library and adds its rules to `registry`; returns their ids.
pub fn load(path: &Path, registry: &mut Registry) -> Result<Vec<&'static str>, PluginError> {
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
    // plugin; nothing of it is called before the C-ABI handshake below succeeds, and the library
    // is never unloaded (it is leaked at the end), so nothing it hands over can dangle.
    let library = unsafe { libloading::Library::new(&canonical) }
        .map_err(|e| fail(format!("cannot be loaded as a shared library: {e}")))?;

    // SAFETY: the symbol is looked up with the C signature `declare_plugin!` gives it; calling a
    // C-ABI function that takes nothing and returns an integer is sound whichever compiler built
    // the library.
    let abi = unsafe {
        let abi = library.get::<AbiFn>(b"vigil_plugin_abi\0").map_err(|_| {
            fail(
                "is not a vigil plugin (it exports no `vigil_plugin_abi`); build the rule crate \
                 as a cdylib with `vigil_engine::declare_plugin!()` and its `dynamic` feature"
                    .into(),
            )
        })?;
        abi()
    };
    if abi != PLUGIN_ABI {
        return Err(fail(format!(
            "was built for plugin ABI {abi}; this vigil speaks ABI {PLUGIN_ABI}; {REBUILD}"
        )));
    }

    // SAFETY: same as above: a C-ABI function returning a pointer to a NUL-terminated string
    // that the plugin keeps for the life of the process (it is never unloaded); the pointer is
    // checked for null before it is read.
    let theirs = unsafe {
        let fingerprint = library
            .get::<FingerprintFn>(b"vigil_plugin_fingerprint\0")
            .map_err(|_| fail("exports an ABI version but no `vigil_plugin_fingerprint`".into()))?;
        let raw = fingerprint();
        if raw.is_null() {
            return Err(fail("returned no fingerprint".into()));
        }
        CStr::from_ptr(raw).to_string_lossy().into_owned()
    };
    let ours = fingerprint();
    if theirs != ours {
        return Err(fail(format!(
            "was built differently from this vigil: {}; {REBUILD}",
            differences(&theirs, &ours)
        )));
    }

    // SAFETY: the fingerprints are equal, so the plugin was built by the same compiler for the
    // same target against the same engine, and `vigil_plugin_register` has the Rust signature
    // `RegisterFn` that `declare_plugin!` gives it; its registrations point into the library,
    // which is never unloaded.
    let register = unsafe {
        *library
            .get::<RegisterFn>(b"vigil_plugin_register\0")
            .map_err(|_| {
                fail("passed the handshake but exports no `vigil_plugin_register`".into())
            })?
    };
    let mut registrations = Vec::new();
    register(&mut |r| registrations.push(r));
    // Never unloaded: the rules, vtables and strings handed over live in the library.
    std::mem::forget(library);

    let origin = Origin::Plugin(canonical);
    let mut ids = Vec::new();
    for registration in registrations {
        registry
            .add(registration, origin.clone())
            .map_err(|e| fail(e.to_string()))?;
        ids.push(registration.meta.id);
    }
    if ids.is_empty() {
        return Err(fail("registers no rule".into()));
    }
    Ok(ids)
}

/// The fields of two fingerprints that differ, as `field: plugin X, vigil Y`.
fn differences(theirs: &str, ours: &str) -> String {
    let fields = |s: &str| -> BTreeMap<String, String> {
        s.split(';')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let (theirs, ours) = (fields(theirs), fields(ours));
    let mut keys: Vec<&String> = theirs.keys().chain(ours.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| theirs.get(*k) != ours.get(*k))
        .map(|k| {
            let show = |v: Option<&String>| v.map_or("(none)".to_string(), |v| format!("`{v}`"));
            format!(
                "{k}: plugin {}, vigil {}",
                show(theirs.get(k)),
                show(ours.get(k))
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_names_engine_compiler_target_abi_and_layout() {
        let fp = fingerprint();
        assert!(
            fp.starts_with(&format!(
                "engine={};rustc=rustc ",
                env!("CARGO_PKG_VERSION")
            )),
            "{fp}"
        );
        assert!(fp.contains(";abi=1;layout="), "{fp}");
        // SAFETY: fingerprint_c returns a pointer to a NUL-terminated string kept forever.
        let c = unsafe { CStr::from_ptr(fingerprint_c()) };
        assert_eq!(c.to_str().unwrap(), fp);
    }

    #[test]
    fn differences_show_only_the_fields_that_differ() {
        let ours = "engine=0.1.0;rustc=rustc 1.95.0;target=x86_64;abi=1";
        let theirs = "engine=0.2.0;rustc=rustc 1.95.0;target=x86_64;abi=1;extra=1";
        assert_eq!(
            differences(theirs, ours),
            "engine: plugin `0.2.0`, vigil `0.1.0`; extra: plugin `1`, vigil (none)"
        );
    }

    #[test]
    fn a_missing_file_is_refused_clearly() {
        let mut registry = Registry::default();
        let err = load(Path::new("/nonexistent/libteam.so"), &mut registry).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("plugin /nonexistent/libteam.so: cannot be read:"),
            "{err}"
        );
    }
}
