//! The fault configuration: a small key=value file, parsed here without
//! any unsafe code. See README.md for the format.

use std::fmt;

use cryptoki_sys::*;

/// The PKCS#11 functions a rule can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Initialize,
    GetSlotList,
    GetTokenInfo,
    OpenSession,
    GetSessionInfo,
    Login,
    FindObjectsInit,
    FindObjects,
    GetAttributeValue,
    CopyObject,
    CreateObject,
    DestroyObject,
    SignInit,
    Sign,
    GenerateKeyPair,
}

impl Func {
    pub const ALL: [Func; 15] = [
        Func::Initialize,
        Func::GetSlotList,
        Func::GetTokenInfo,
        Func::OpenSession,
        Func::GetSessionInfo,
        Func::Login,
        Func::FindObjectsInit,
        Func::FindObjects,
        Func::GetAttributeValue,
        Func::CopyObject,
        Func::CreateObject,
        Func::DestroyObject,
        Func::SignInit,
        Func::Sign,
        Func::GenerateKeyPair,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Func::Initialize => "C_Initialize",
            Func::GetSlotList => "C_GetSlotList",
            Func::GetTokenInfo => "C_GetTokenInfo",
            Func::OpenSession => "C_OpenSession",
            Func::GetSessionInfo => "C_GetSessionInfo",
            Func::Login => "C_Login",
            Func::FindObjectsInit => "C_FindObjectsInit",
            Func::FindObjects => "C_FindObjects",
            Func::GetAttributeValue => "C_GetAttributeValue",
            Func::CopyObject => "C_CopyObject",
            Func::CreateObject => "C_CreateObject",
            Func::DestroyObject => "C_DestroyObject",
            Func::SignInit => "C_SignInit",
            Func::Sign => "C_Sign",
            Func::GenerateKeyPair => "C_GenerateKeyPair",
        }
    }

    /// Index into per-function counters.
    pub fn index(self) -> usize {
        Func::ALL.iter().position(|f| *f == self).unwrap_or(0)
    }

    fn parse(s: &str) -> Option<Func> {
        Func::ALL.into_iter().find(|f| f.name() == s)
    }

    /// Whether the function addresses a slot (a missing token answers
    /// CKR_TOKEN_NOT_PRESENT) rather than a session (CKR_DEVICE_REMOVED).
    pub fn slot_level(self) -> bool {
        matches!(
            self,
            Func::GetSlotList | Func::GetTokenInfo | Func::OpenSession
        )
    }
}

/// Return codes known by name (others are given in hex).
const RV_NAMES: &[(&str, CK_RV)] = &[
    ("CKR_OK", CKR_OK),
    ("CKR_HOST_MEMORY", CKR_HOST_MEMORY),
    ("CKR_SLOT_ID_INVALID", CKR_SLOT_ID_INVALID),
    ("CKR_GENERAL_ERROR", CKR_GENERAL_ERROR),
    ("CKR_FUNCTION_FAILED", CKR_FUNCTION_FAILED),
    ("CKR_DEVICE_ERROR", CKR_DEVICE_ERROR),
    ("CKR_DEVICE_MEMORY", CKR_DEVICE_MEMORY),
    ("CKR_DEVICE_REMOVED", CKR_DEVICE_REMOVED),
    ("CKR_KEY_HANDLE_INVALID", CKR_KEY_HANDLE_INVALID),
    ("CKR_OPERATION_ACTIVE", CKR_OPERATION_ACTIVE),
    ("CKR_PIN_INCORRECT", CKR_PIN_INCORRECT),
    ("CKR_PIN_LOCKED", CKR_PIN_LOCKED),
    ("CKR_SESSION_CLOSED", CKR_SESSION_CLOSED),
    ("CKR_SESSION_HANDLE_INVALID", CKR_SESSION_HANDLE_INVALID),
    ("CKR_TOKEN_NOT_PRESENT", CKR_TOKEN_NOT_PRESENT),
    ("CKR_TOKEN_NOT_RECOGNIZED", CKR_TOKEN_NOT_RECOGNIZED),
    ("CKR_USER_NOT_LOGGED_IN", CKR_USER_NOT_LOGGED_IN),
    ("CKR_CRYPTOKI_NOT_INITIALIZED", CKR_CRYPTOKI_NOT_INITIALIZED),
];

/// The name of a return code, or its hex value.
pub fn rv_name(rv: CK_RV) -> String {
    RV_NAMES
        .iter()
        .find(|(_, v)| *v == rv)
        .map(|(n, _)| n.to_string())
        .unwrap_or_else(|| format!("0x{rv:X}"))
}

fn parse_rv(s: &str) -> Result<CK_RV, String> {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return CK_RV::from_str_radix(hex, 16).map_err(|e| format!("bad rv {s}: {e}"));
    }
    RV_NAMES
        .iter()
        .find(|(n, _)| *n == s)
        .map(|(_, v)| *v)
        .ok_or_else(|| format!("unknown rv {s} (give its name or 0x hex)"))
}

/// Which calls of the function fail.
#[derive(Debug, Clone, PartialEq)]
pub enum When {
    /// Calls number `on` .. `on + count` (1-based, per process);
    /// `count = None` for every call from `on`.
    Nth { on: u64, count: Option<u64> },
    /// Each call with this probability (from the seeded generator).
    Probability(f64),
}

/// One `fail = ...` rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub func: Func,
    pub when: When,
    pub rv: CK_RV,
}

impl Rule {
    /// Whether call number `n` (1-based) fails; `draw` is a uniform
    /// number in [0, 1) asked for only by a probability rule.
    pub fn hits(&self, n: u64, draw: impl FnOnce() -> f64) -> bool {
        match self.when {
            When::Nth { on, count: None } => n >= on,
            When::Nth { on, count: Some(c) } => n >= on && n < on.saturating_add(c),
            When::Probability(p) => draw() < p,
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    pub rules: Vec<Rule>,
    /// Every wrapped call fails as if the token were unplugged.
    pub away: bool,
    /// At most this many signatures (C_Sign calls that make one) per
    /// second, across the process's threads.
    pub sign_rate: Option<f64>,
    /// Seed of the generator behind `probability`.
    pub seed: u64,
    /// A file each injected fault is appended to, one line each.
    pub log: Option<String>,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.func.name(), rv_name(self.rv))
    }
}

/// A rule being read: its keys may come in any order after `fail`.
struct Partial {
    func: Func,
    on: Option<u64>,
    count: Option<Option<u64>>,
    probability: Option<f64>,
    rv: Option<CK_RV>,
}

impl Partial {
    fn finish(self) -> Result<Rule, String> {
        let when = match (self.probability, self.on, self.count) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(format!(
                    "fail = {}: probability excludes on and count",
                    self.func.name()
                ))
            }
            (Some(p), None, None) => When::Probability(p),
            (None, on, count) => When::Nth {
                on: on.unwrap_or(1),
                count: count.unwrap_or(Some(1)),
            },
        };
        Ok(Rule {
            func: self.func,
            when,
            rv: self.rv.unwrap_or(CKR_DEVICE_ERROR),
        })
    }
}

fn number<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, String>
where
    T::Err: fmt::Display,
{
    v.parse().map_err(|e| format!("{key} = {v}: {e}"))
}

fn in_rule<'a>(
    current: &'a mut Option<Partial>,
    key: &str,
    i: usize,
) -> Result<&'a mut Partial, String> {
    current
        .as_mut()
        .ok_or_else(|| format!("line {}: {key} before any fail = FUNCTION", i + 1))
}

/// Parses the file's text. Lines are `key = value`; `#` starts a comment.
/// `fail = FUNCTION` starts a rule, and `on`, `count`, `probability`
/// and `rv` after it belong to it; `away`, `sign_rate`, `seed` and `log`
/// are global wherever they stand.
pub fn parse(text: &str) -> Result<Config, String> {
    let mut cfg = Config::default();
    let mut current: Option<Partial> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim()))
            .ok_or_else(|| format!("line {}: want key = value: {raw}", i + 1))?;
        match key {
            "fail" => {
                let func = Func::parse(value)
                    .ok_or_else(|| format!("line {}: cannot wrap {value}", i + 1))?;
                if let Some(p) = current.take() {
                    cfg.rules.push(p.finish()?);
                }
                current = Some(Partial {
                    func,
                    on: None,
                    count: None,
                    probability: None,
                    rv: None,
                });
            }
            "on" => in_rule(&mut current, key, i)?.on = Some(number::<u64>(key, value)?.max(1)),
            "count" => {
                in_rule(&mut current, key, i)?.count = Some(match value {
                    "all" => None,
                    v => Some(number(key, v)?),
                })
            }
            "probability" => {
                let p: f64 = number(key, value)?;
                if !(0.0..=1.0).contains(&p) {
                    return Err(format!("line {}: probability {p} not in [0, 1]", i + 1));
                }
                in_rule(&mut current, key, i)?.probability = Some(p);
            }
            "rv" => in_rule(&mut current, key, i)?.rv = Some(parse_rv(value)?),
            "away" => cfg.away = !matches!(value, "0" | "false" | "no" | "off"),
            "sign_rate" => {
                let r: f64 = number(key, value)?;
                cfg.sign_rate = (r > 0.0).then_some(r);
            }
            "seed" => cfg.seed = number(key, value)?,
            "log" => cfg.log = Some(value.to_string()),
            _ => return Err(format!("line {}: unknown key {key}", i + 1)),
        }
    }
    if let Some(p) = current.take() {
        cfg.rules.push(p.finish()?);
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_globals_and_defaults() {
        let cfg = parse(
            "# a comment\nsign_rate = 200\nfail = C_Sign\non = 100\nrv = CKR_SESSION_HANDLE_INVALID\n\
             fail = C_Login # every login\ncount = all\nrv = 0x32\nseed = 7\n\
             fail = C_FindObjects\nprobability = 0.5\n",
        )
        .unwrap();
        assert_eq!(cfg.sign_rate, Some(200.0));
        assert_eq!(cfg.seed, 7);
        assert!(!cfg.away);
        assert_eq!(
            cfg.rules,
            vec![
                Rule {
                    func: Func::Sign,
                    when: When::Nth {
                        on: 100,
                        count: Some(1)
                    },
                    rv: CKR_SESSION_HANDLE_INVALID
                },
                Rule {
                    func: Func::Login,
                    when: When::Nth { on: 1, count: None },
                    rv: CKR_DEVICE_REMOVED
                },
                Rule {
                    func: Func::FindObjects,
                    when: When::Probability(0.5),
                    rv: CKR_DEVICE_ERROR
                },
            ]
        );
    }

    #[test]
    fn nth_and_count() {
        let r = parse("fail = C_Sign\non = 3\ncount = 2").unwrap().rules[0].clone();
        let hit: Vec<u64> = (1..8).filter(|n| r.hits(*n, || 1.0)).collect();
        assert_eq!(hit, vec![3, 4]);
        let r = parse("fail = C_Sign\non = 3\ncount = all").unwrap().rules[0].clone();
        assert!(!r.hits(2, || 1.0) && r.hits(3, || 1.0) && r.hits(1000, || 1.0));
    }

    #[test]
    fn mistakes_are_refused() {
        for bad in [
            "on = 3",
            "fail = C_Frobnicate",
            "fail = C_Sign\nrv = CKR_NONSENSE",
            "fail = C_Sign\nprobability = 2",
            "fail = C_Sign\non = 2\nprobability = 0.1",
            "colour = blue",
            "just words",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse("away = 1").unwrap().away);
        assert!(!parse("away = 0").unwrap().away);
        assert_eq!(rv_name(CKR_DEVICE_REMOVED), "CKR_DEVICE_REMOVED");
        assert_eq!(rv_name(0x12345), "0x12345");
    }
}
