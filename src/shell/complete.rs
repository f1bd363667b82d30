//! Tab completion for the shell: commands and subcommands from the
//! grammar itself, options of the command being typed, zone names and key
//! tags from the keystore ([`Catalog`]).

use std::collections::BTreeMap;

use clap::CommandFactory;

use super::grammar::ShellLine;

/// What completion knows of the keystore: each zone with its key tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    pub zones: BTreeMap<String, Vec<u16>>,
}

impl Catalog {
    /// The zones and key tags of the keystore (no token, no PIN needed).
    pub fn load(ks: &crate::keystore::Keystore) -> anyhow::Result<Catalog> {
        let mut zones: BTreeMap<String, Vec<u16>> = BTreeMap::new();
        for k in ks.keys(None)? {
            let zone = k.zone.to_string();
            let zone = zone.strip_suffix('.').unwrap_or(&zone).to_string();
            let tags = zones.entry(zone).or_default();
            if !tags.contains(&k.key_tag) {
                tags.push(k.key_tag);
            }
        }
        Ok(Catalog { zones })
    }
}

/// Completes the word that ends at the end of `before` (the line up to
/// the cursor): where it starts, and the candidates, sorted.
pub fn complete(before: &str, catalog: &Catalog) -> (usize, Vec<String>) {
    let start = before.rfind(' ').map_or(0, |i| i + 1);
    let partial = &before[start..];
    let done: Vec<&str> = before[..start]
        .split(' ')
        .filter(|w| !w.is_empty())
        .collect();
    let mut cmd = ShellLine::command();
    cmd.build();
    let mut positionals: Vec<&str> = Vec::new();
    let mut in_help = false;
    for w in &done {
        if *w == "help" && positionals.is_empty() && cmd.get_name() == "dnsseal shell" {
            in_help = true;
            continue;
        }
        match cmd.find_subcommand(w) {
            Some(sub) if positionals.is_empty() => cmd = sub.clone(),
            _ if w.starts_with('-') => {}
            _ => positionals.push(w),
        }
    }
    let mut out: Vec<String> = if cmd.has_subcommands() && positionals.is_empty() {
        cmd.get_subcommands()
            .filter(|s| !(in_help && s.get_name() == "help"))
            .flat_map(|s| {
                std::iter::once(s.get_name().to_string())
                    .chain(s.get_visible_aliases().map(str::to_string))
            })
            .collect()
    } else if in_help {
        Vec::new()
    } else if matches!(done.last(), Some(&"--tag") | Some(&"-t")) {
        let zone = positionals.first().copied().unwrap_or("");
        let zone = zone.strip_suffix('.').unwrap_or(zone);
        catalog
            .zones
            .iter()
            .filter(|(z, _)| z.eq_ignore_ascii_case(zone))
            .flat_map(|(_, tags)| tags.iter().map(u16::to_string))
            .collect()
    } else if partial.starts_with('-') {
        cmd.get_arguments()
            .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
            .collect()
    } else if takes_zone(&cmd) {
        catalog.zones.keys().cloned().collect()
    } else {
        Vec::new()
    };
    out.retain(|c| c.starts_with(partial));
    out.sort();
    out.dedup();
    (start, out)
}

/// Whether the command has a positional argument for zones.
fn takes_zone(cmd: &clap::Command) -> bool {
    cmd.get_positionals()
        .any(|a| matches!(a.get_id().as_str(), "zone" | "zones"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        let mut zones = BTreeMap::new();
        zones.insert("example.com".to_string(), vec![12345, 4711]);
        zones.insert("example.net".to_string(), vec![999]);
        Catalog { zones }
    }

    fn cands(before: &str) -> Vec<String> {
        complete(before, &catalog()).1
    }

    #[test]
    fn commands_and_subcommands() {
        assert_eq!(cands("ke"), ["keys"]);
        assert_eq!(complete("ke", &catalog()).0, 0);
        let all = cands("");
        for c in [
            "audit", "exit", "help", "keys", "policy", "quit", "rollover", "token",
        ] {
            assert!(all.contains(&c.to_string()), "{all:?}");
        }
        assert!(!all.iter().any(|c| c == "sign" || c == "init"));
        assert_eq!(cands("keys d"), ["delete", "dnskey", "ds"]);
        assert_eq!(complete("keys d", &catalog()).0, 5);
        assert!(!cands("keys ").contains(&"import-bind".to_string()));
        assert_eq!(cands("rollover p"), ["plan"]);
        assert_eq!(cands("audit "), ["export", "verify"]);
        assert_eq!(cands("help ke"), ["keys"]);
        assert_eq!(cands("help keys c"), ["create"]);
    }

    #[test]
    fn zones_tags_and_options() {
        assert_eq!(cands("keys ds ex"), ["example.com", "example.net"]);
        assert_eq!(cands("keys ds example.c"), ["example.com"]);
        assert_eq!(cands("rollover zsk example.n"), ["example.net"]);
        assert_eq!(cands("keys show example.com --tag "), ["12345", "4711"]);
        assert_eq!(cands("keys show example.com -t 1"), ["12345"]);
        assert_eq!(cands("keys delete example.net --tag "), ["999"]);
        assert!(cands("keys ds example.com --d").contains(&"--digest".to_string()));
        assert!(cands("token info ").is_empty());
        assert!(cands("keys ds example.com ")
            .iter()
            .all(|c| c.starts_with("example")));
    }
}
