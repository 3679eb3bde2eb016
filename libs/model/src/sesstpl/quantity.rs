//! Resource quantities as Backend.AI documents write them, read into the Tapis units
//! (CPU millicores, memory MiB).
//!
//! # CPU grammar (`spec.resources.cpu`)
//!
//! ```text
//! cpu    = cores / millis
//! cores  = 1*DIGIT [ "." 1*3DIGIT ]     ; whole or fractional cores: "2", "0.5", "1.25", "0.125"
//! millis = 1*DIGIT "m"                  ; millicores, Kubernetes style: "500m"
//! ```
//!
//! A YAML/JSON number (`cpu: 2`, `cpu: 0.5`) is read by its decimal text with the same grammar.
//! The result must be at least 1 millicore and fit in 32 bits. No sign, no exponent, no spaces,
//! no more than three fractional digits (finer than a millicore cannot be expressed).
//!
//! # Memory grammar (`spec.resources.mem`)
//!
//! ```text
//! mem    = number [ unit ]
//! number = 1*DIGIT [ "." 1*9DIGIT ]
//! unit   = "b" / ( ( "k" / "m" / "g" / "t" ) [ "i" ] [ "b" ] )   ; case-insensitive
//! ```
//!
//! Without a unit (or with `b`) the number is bytes, as in Backend.AI. Every multiplier is
//! binary, also as Backend.AI reads them: `4g` = `4G` = `4Gi` = `4GiB` = 4096 MiB, `512m` =
//! 512 MiB, `1.5g` = 1536 MiB. A YAML/JSON number is bytes. The result must be a whole,
//! positive number of MiB that fits in 32 bits: `1k` and `4096` (bytes) are rejected.
//!
//! Canonical forms (what a stored template shows): CPU as cores (`"2"`, `"0.5"`); memory as
//! `"<n>g"` when a whole number of GiB, else `"<n>m"`.

use std::fmt;

use serde::{Serialize, Serializer};

/// CPU in millicores (always > 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cpu(u32);

/// Memory in MiB (always > 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mem(u32);

/// A decimal `int[.frac]` split into digits; `None` when the text is not that shape.
fn decimal(text: &str, max_frac: usize) -> Option<(&str, &str)> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let frac_ok = !text.contains('.') || (!frac.is_empty() && frac.len() <= max_frac);
    (!int.is_empty() && int.len() <= 20 && digits(int) && digits(frac) && frac_ok).then_some((int, frac))
}

/// `int.frac × 10^scale` as an integer, when `frac` has at most `scale` digits.
fn scaled(int: &str, frac: &str, scale: u32) -> Option<u128> {
    let int: u128 = int.parse().ok()?;
    let pad = scale.checked_sub(u32::try_from(frac.len()).ok()?)?;
    let frac: u128 = if frac.is_empty() { 0 } else { frac.parse().ok()? };
    int.checked_mul(10u128.pow(scale))?.checked_add(frac.checked_mul(10u128.pow(pad))?)
}

impl Cpu {
    pub fn from_millicores(m: u32) -> Option<Self> {
        (m > 0).then_some(Self(m))
    }

    pub fn millicores(self) -> u32 {
        self.0
    }

    /// Reads the CPU grammar above. The error never repeats the input.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.starts_with('-') {
            return Err("must not be negative".into());
        }
        let millis = if let Some(m) = text.strip_suffix('m') {
            if m.is_empty() || !m.bytes().all(|b| b.is_ascii_digit()) || m.len() > 20 {
                return Err(cpu_grammar());
            }
            m.parse::<u128>().ok()
        } else {
            let Some((int, frac)) = decimal(text, 3) else {
                return Err(if decimal(text, 9).is_some() {
                    "is finer than a millicore (at most 3 fractional digits)".into()
                } else {
                    cpu_grammar()
                });
            };
            scaled(int, frac, 3)
        };
        match millis {
            Some(0) => Err("must be more than 0".into()),
            Some(m) => u32::try_from(m).map(Self).map_err(|_| "is too large".into()),
            None => Err("is too large".into()),
        }
    }
}

fn cpu_grammar() -> String {
    "must be a number of cores (\"2\", \"0.5\") or of millicores (\"500m\")".into()
}

impl Mem {
    pub fn from_mib(mib: u32) -> Option<Self> {
        (mib > 0).then_some(Self(mib))
    }

    pub fn mib(self) -> u32 {
        self.0
    }

    /// Reads the memory grammar above. The error never repeats the input.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.starts_with('-') {
            return Err("must not be negative".into());
        }
        let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let power = match unit.to_ascii_lowercase().as_str() {
            "" | "b" => 0,
            "k" | "ki" | "kb" | "kib" => 1,
            "m" | "mi" | "mb" | "mib" => 2,
            "g" | "gi" | "gb" | "gib" => 3,
            "t" | "ti" | "tb" | "tib" => 4,
            _ => {
                return Err(
                    "must be a size such as \"512m\", \"4g\" or \"2Gi\" (units b, k, m, g, t; binary multiples)".into(),
                );
            }
        };
        let Some((int, frac)) = decimal(number, 9) else {
            return Err("must start with a number such as \"4\" or \"1.5\"".into());
        };
        // bytes × 10^9, exact: the fraction has at most nine digits.
        let scale = 9u32;
        let too_large = || "is too large".to_string();
        let fixed = scaled(int, frac, scale).ok_or_else(too_large)?;
        let bytes_fixed = fixed.checked_mul(1024u128.pow(power)).ok_or_else(too_large)?;
        let mib_fixed = 1024u128 * 1024 * 10u128.pow(scale);
        if bytes_fixed == 0 {
            return Err("must be more than 0".into());
        }
        if bytes_fixed % mib_fixed != 0 {
            let hint = if unit.is_empty() { "; a bare number is bytes, write e.g. \"512m\" for MiB" } else { "" };
            return Err(format!("must be a whole number of MiB{hint}"));
        }
        u32::try_from(bytes_fixed / mib_fixed).map(Self).map_err(|_| too_large())
    }
}

impl fmt::Display for Cpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (cores, millis) = (self.0 / 1000, self.0 % 1000);
        if millis == 0 {
            write!(f, "{cores}")
        } else {
            let frac = format!("{millis:03}");
            write!(f, "{cores}.{}", frac.trim_end_matches('0'))
        }
    }
}

impl fmt::Display for Mem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_multiple_of(1024) { write!(f, "{}g", self.0 / 1024) } else { write!(f, "{}m", self.0) }
    }
}

impl Serialize for Cpu {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Serialize for Mem {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
