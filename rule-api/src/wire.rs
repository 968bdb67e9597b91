//! Serde helpers for numbers that may be non-finite: JSON has no NaN or infinity, so they cross
//! the plugin boundary (and reach the JSON report) as the strings `"NaN"`, `"inf"` and `"-inf"`,
//! and come back as the same values.

use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

/// A number that keeps NaN and infinities through JSON.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Float(pub f64);

impl Serialize for Float {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.is_finite() {
            s.serialize_f64(v)
        } else if v.is_nan() {
            s.serialize_str("NaN")
        } else if v > 0.0 {
            s.serialize_str("inf")
        } else {
            s.serialize_str("-inf")
        }
    }
}

impl<'de> Deserialize<'de> for Float {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Float;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number, \"NaN\", \"inf\" or \"-inf\"")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Float, E> {
                Ok(Float(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Float, E> {
                Ok(Float(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Float, E> {
                Ok(Float(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Float, E> {
                match v {
                    "NaN" => Ok(Float(f64::NAN)),
                    "inf" => Ok(Float(f64::INFINITY)),
                    "-inf" => Ok(Float(f64::NEG_INFINITY)),
                    other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// `#[serde(with = "wire::f64")]` for an `f64` field.
pub mod f64 {
    use super::*;

    /// Serializes through [`Float`].
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        Float(*v).serialize(s)
    }

    /// Deserializes through [`Float`].
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Float::deserialize(d).map(|f| f.0)
    }
}

/// `#[serde(with = "wire::opt_f64")]` for an `Option<f64>` field.
pub mod opt_f64 {
    use super::*;

    /// Serializes through [`Float`].
    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        v.map(Float).serialize(s)
    }

    /// Deserializes through [`Float`].
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Option::<Float>::deserialize(d).map(|f| f.map(|f| f.0))
    }
}

/// `#[serde(with = "wire::opt_pair")]` for an `Option<(f64, f64)>` field.
pub mod opt_pair {
    use super::*;

    /// Serializes through [`Float`].
    pub fn serialize<S: Serializer>(v: &Option<(f64, f64)>, s: S) -> Result<S::Ok, S::Error> {
        v.map(|(a, b)| (Float(a), Float(b))).serialize(s)
    }

    /// Deserializes through [`Float`].
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<(f64, f64)>, D::Error> {
        Option::<(Float, Float)>::deserialize(d).map(|p| p.map(|(a, b)| (a.0, b.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_numbers_survive_json() {
        for v in [1.5, -0.0, f64::INFINITY, f64::NEG_INFINITY, 1e308] {
            let text = serde_json::to_string(&Float(v)).unwrap();
            assert_eq!(serde_json::from_str::<Float>(&text).unwrap().0, v, "{text}");
        }
        let nan = serde_json::to_string(&Float(f64::NAN)).unwrap();
        assert_eq!(nan, "\"NaN\"");
        assert!(serde_json::from_str::<Float>(&nan).unwrap().0.is_nan());
        assert!(serde_json::from_str::<Float>("\"huge\"").is_err());
    }
}
