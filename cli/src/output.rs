//! Printing: tables, JSON, errors and exit codes.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use jiff::tz::TimeZone;
use yilian_node::control::ErrorKind;

/// Exit code of a failure with no more specific class.
pub(crate) const EXIT_FAILURE: u8 = 1;
/// The named document or object does not exist.
pub(crate) const EXIT_NOT_FOUND: u8 = 3;
/// The input was invalid.
pub(crate) const EXIT_INVALID: u8 = 4;
/// The store failed (disk full, I/O).
pub(crate) const EXIT_STORAGE: u8 = 5;
/// The node is not reachable or is shutting down.
pub(crate) const EXIT_UNAVAILABLE: u8 = 6;
/// Documents were refused by a peer or from a peer (`sync wait`).
pub(crate) const EXIT_REFUSED: u8 = 7;

/// Documents that a sync exchange refused; the message names them.
#[derive(Debug)]
pub(crate) struct DocumentsRefused(pub(crate) String);

impl std::fmt::Display for DocumentsRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DocumentsRefused {}

/// The node refused a request.
#[derive(Debug)]
pub(crate) struct NodeRefused {
    pub(crate) kind: ErrorKind,
    pub(crate) message: String,
}

impl std::fmt::Display for NodeRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NodeRefused {}

/// Prints an error with its whole chain of causes.
pub(crate) fn error(e: &anyhow::Error) {
    eprintln!("error: {e:#}");
}

/// The exit code for an error.
pub(crate) fn exit_code(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<DocumentsRefused>().is_some() {
        return EXIT_REFUSED;
    }
    if let Some(r) = e.downcast_ref::<NodeRefused>() {
        return match r.kind {
            ErrorKind::NotFound => EXIT_NOT_FOUND,
            ErrorKind::InvalidInput | ErrorKind::Protocol => EXIT_INVALID,
            ErrorKind::Storage => EXIT_STORAGE,
            _ => EXIT_UNAVAILABLE,
        };
    }
    if e.chain().any(|c| {
        c.downcast_ref::<yilian_node::control::ClientError>()
            .is_some()
    }) {
        return EXIT_UNAVAILABLE;
    }
    EXIT_FAILURE
}

/// A table with the house style.
pub(crate) fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    t
}

/// Prints a value as pretty JSON.
pub(crate) fn json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Writes pretty JSON to a file (atomically) or to standard output.
pub(crate) fn write_json(
    v: &serde_json::Value,
    out: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let text = serde_json::to_string_pretty(v)?;
    match out {
        None => {
            println!("{text}");
            Ok(())
        }
        Some(path) => {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, text.as_bytes())
                .and_then(|_| std::fs::rename(&tmp, path))
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {}", path.display());
            Ok(())
        }
    }
}

/// Writes a file atomically (a temporary file renamed into place), naming it on failure.
pub(crate) fn write_file(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, path))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// A yes/no mark for tables.
pub(crate) fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "-" }
}

/// Prints a line.
pub(crate) fn line(s: impl std::fmt::Display) {
    println!("{s}");
}

/// Prints a note for the operator on stderr (kept out of piped output).
pub(crate) fn note(s: impl std::fmt::Display) {
    eprintln!("{s}");
}

/// The facility's time zone, set once at start from the data directory's configuration.
static ZONE: std::sync::OnceLock<TimeZone> = std::sync::OnceLock::new();

/// Sets the time zone every time is shown in (the first call wins).
pub(crate) fn set_zone(tz: TimeZone) {
    let _ = ZONE.set(tz);
}

/// Shows times in the zone of the facility whose data directory is `dir`. A directory without
/// a readable configuration (not initialised yet, a CA directory) leaves the system's zone, and
/// its command says why it cannot use the directory.
pub(crate) fn use_zone_of(dir: &std::path::Path) {
    let path = yilian_node::datadir::DataDir::new(dir).config_path();
    if let Ok(cfg) = yilian_node::config::NodeConfig::load(&path) {
        set_zone(cfg.zone());
    }
}

/// The time zone times are shown in: the facility's, or the system's when no data directory
/// was read.
pub(crate) fn zone() -> &'static TimeZone {
    ZONE.get_or_init(TimeZone::system)
}

/// A millisecond timestamp as the facility's local time (`2026-04-01 00:30:00`).
pub(crate) fn time(ms: u64) -> String {
    time_in(ms, zone())
}

/// A millisecond timestamp as local time in `tz`.
pub(crate) fn time_in(ms: u64, tz: &TimeZone) -> String {
    jiff::Timestamp::from_millisecond(ms as i64)
        .map(|t| {
            t.to_zoned(tz.clone())
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| format!("{ms} ms"))
}

/// Adds RFC 3339 times with the facility's offset beside the millisecond times of a JSON value,
/// at any depth: `X_ms` gets `X_at`, and a numeric `at` gets `time`. The millisecond fields
/// stay as they are.
pub(crate) fn add_times(v: &mut serde_json::Value) {
    add_times_in(v, zone());
}

fn add_times_in(v: &mut serde_json::Value, tz: &TimeZone) {
    match v {
        serde_json::Value::Object(m) => {
            let mut extra = Vec::new();
            for (k, x) in m.iter_mut() {
                let name = match k.strip_suffix("_ms") {
                    Some(base) => format!("{base}_at"),
                    None if k == "at" => "time".to_string(),
                    None => {
                        add_times_in(x, tz);
                        continue;
                    }
                };
                if let Some(ms) = x.as_u64() {
                    extra.push((name, rfc3339(ms, tz).into()));
                } else if x.is_null() {
                    extra.push((name, serde_json::Value::Null));
                }
            }
            for (k, x) in extra {
                m.entry(k).or_insert(x);
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| add_times_in(x, tz)),
        _ => {}
    }
}

/// An instant as RFC 3339 text with its offset in `tz`.
pub(crate) fn rfc3339(ms: u64, tz: &TimeZone) -> String {
    yilian_node::documents::rfc3339(ms, tz)
}

/// The name of the zone times are shown in (`Asia/Shanghai`).
pub(crate) fn zone_name() -> String {
    yilian_node::config::zone_label(zone())
}

/// Prints a value as pretty JSON with RFC 3339 times beside its millisecond times (see
/// [`add_times`]); an object also gets `time_zone`.
pub(crate) fn json_timed<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    let mut v = serde_json::to_value(v)?;
    add_times(&mut v);
    if let Some(m) = v.as_object_mut() {
        m.entry("time_zone").or_insert(zone_name().into());
    }
    json(&v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shanghai() -> TimeZone {
        TimeZone::get("Asia/Shanghai").unwrap()
    }

    #[test]
    fn times_print_in_the_facility_s_zone() {
        assert_eq!(time_in(0, &TimeZone::UTC), "1970-01-01 00:00:00");
        // 2026-03-31T16:30:00Z is half past midnight on 1 April in Beijing.
        let ms = 1_774_974_600_000;
        assert_eq!(time_in(ms, &TimeZone::UTC), "2026-03-31 16:30:00");
        assert_eq!(time_in(ms, &shanghai()), "2026-04-01 00:30:00");
    }

    #[test]
    fn json_times_get_rfc3339_siblings_with_the_offset() {
        let mut v = serde_json::json!({
            "created_ms": 1_774_974_600_000u64,
            "last_seen_ms": null,
            "acts": [{ "at": 1_774_974_600_123u64, "by": "CH-01" }],
            "visit": { "at": "2026-04-01T09:00" },
        });
        add_times_in(&mut v, &shanghai());
        assert_eq!(v["created_ms"], 1_774_974_600_000u64);
        assert_eq!(v["created_at"], "2026-04-01T00:30:00+08:00");
        assert!(v["last_seen_at"].is_null() && v.get("last_seen_at").is_some());
        assert_eq!(v["acts"][0]["time"], "2026-04-01T00:30:00.123+08:00");
        assert!(v["visit"].get("time").is_none());
    }
}
