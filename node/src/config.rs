//! The node's configuration file (`yilian.toml` in the data directory): who this facility is
//! and how the node tunes its store. Parsed once at start; errors name the file and the field.

use std::path::Path;

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::ids::FacilityCode;

/// The kind of facility a node serves; it decides the facility's level in reports and its
/// place in the alliance (the county hospital relays for everyone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FacilityKind {
    /// The county hospital leading the alliance (secondary level).
    CountyHospital,
    /// A township health center (乡镇卫生院, primary level).
    TownshipCenter,
    /// A village clinic (村卫生室, primary level).
    VillageClinic,
}

impl FacilityKind {
    /// The kebab-case name used on the command line and in files.
    pub fn as_str(self) -> &'static str {
        match self {
            FacilityKind::CountyHospital => "county-hospital",
            FacilityKind::TownshipCenter => "township-center",
            FacilityKind::VillageClinic => "village-clinic",
        }
    }
}

impl std::fmt::Display for FacilityKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for FacilityKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "county-hospital" => Ok(FacilityKind::CountyHospital),
            "township-center" => Ok(FacilityKind::TownshipCenter),
            "village-clinic" => Ok(FacilityKind::VillageClinic),
            other => Err(format!(
                "unknown facility kind {other:?}: use county-hospital, township-center or village-clinic"
            )),
        }
    }
}

/// Which facility this node serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FacilityConfig {
    /// The facility code, unique in the alliance.
    pub code: FacilityCode,
    /// The facility's name as people know it.
    pub name: String,
    /// The facility kind.
    pub kind: FacilityKind,
    /// The facility's time zone, in which people read its dates (record numbers, tables,
    /// reports' days). Absent: the system's time zone.
    #[serde(default)]
    pub time_zone: Option<ZoneName>,
}

impl FacilityConfig {
    /// The time zone the facility reads dates in: the configured one, else the system's.
    pub fn zone(&self) -> TimeZone {
        self.time_zone
            .as_ref()
            .map_or_else(TimeZone::system, ZoneName::zone)
    }
}

/// An IANA time zone name (`Asia/Shanghai`) found in the time zone database, in its canonical
/// spelling.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ZoneName(String);

impl ZoneName {
    /// Checks a name against the time zone database.
    pub fn parse(name: &str) -> Result<ZoneName, String> {
        let name = name.trim();
        let tz = TimeZone::get(name).map_err(|_| {
            format!(
                "time_zone: {name:?} is not a time zone of the IANA database (e.g. Asia/Shanghai); \
                 on Linux the database comes with the tzdata package (/usr/share/zoneinfo)"
            )
        })?;
        Ok(ZoneName(tz.iana_name().unwrap_or(name).to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The zone. A name checked at load that the database no longer knows falls back to the
    /// system's zone, with a warning.
    pub fn zone(&self) -> TimeZone {
        TimeZone::get(&self.0).unwrap_or_else(|e| {
            tracing::warn!(zone = %self.0, error = %e, "time zone not found; using the system's");
            TimeZone::system()
        })
    }
}

impl TryFrom<String> for ZoneName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        ZoneName::parse(&s)
    }
}

impl From<ZoneName> for String {
    fn from(z: ZoneName) -> String {
        z.0
    }
}

impl std::fmt::Display for ZoneName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for ZoneName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ZoneName::parse(s)
    }
}

/// How a time zone is named to people and in JSON: its IANA name, or its fixed offset, or
/// `local` for a system zone without a name.
pub fn zone_label(tz: &TimeZone) -> String {
    match tz.iana_name() {
        Some(n) => n.to_string(),
        None => tz
            .to_fixed_offset()
            .map_or_else(|_| "local".to_string(), |o| o.to_string()),
    }
}

/// Store tuning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// How many documents stay loaded in memory (least recently used are evicted).
    pub cache_docs: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig { cache_docs: 2048 }
    }
}

/// Default UDP port for node-to-node QUIC.
pub const DEFAULT_PORT: u16 = 7400;

/// QUIC congestion controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Congestion {
    /// CUBIC (quinn's default): loss-based.
    Cubic,
    /// NewReno: loss-based.
    NewReno,
    /// BBR: model-based, marked experimental in quinn; random loss does not make it back off.
    #[default]
    Bbr,
}

impl std::str::FromStr for Congestion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cubic" => Ok(Congestion::Cubic),
            "new-reno" => Ok(Congestion::NewReno),
            "bbr" => Ok(Congestion::Bbr),
            _ => Err(format!(
                "unknown congestion controller {s:?}: cubic, new-reno or bbr"
            )),
        }
    }
}

/// Node-to-node networking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// UDP address to listen on for peers.
    pub listen: std::net::SocketAddr,
    /// Peers this node dials (`HOST:PORT`).
    pub peers: Vec<String>,
    /// QUIC path MTU discovery; turn off on links where it misfires under loss.
    pub mtu_discovery: bool,
    /// QUIC congestion controller (see docs/benchmarks.md for the comparison on a lossy link).
    pub congestion: Congestion,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            listen: std::net::SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)),
            peers: Vec::new(),
            mtu_discovery: true,
            congestion: Congestion::default(),
        }
    }
}

/// Checks a peer address: `HOST:PORT` with a non-empty host and a port.
pub fn check_peer_addr(addr: &str) -> Result<String, String> {
    let a = addr.trim();
    match a.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(a.to_string())
        }
        _ => Err(format!(
            "peer address {addr:?} must be HOST:PORT (e.g. 10.1.2.3:{DEFAULT_PORT})"
        )),
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Which facility this node serves.
    pub facility: FacilityConfig,
    /// Store tuning.
    #[serde(default)]
    pub storage: StorageConfig,
    /// Node-to-node networking.
    #[serde(default)]
    pub network: NetworkConfig,
    /// Result recognition: windows per item class and item, and the mark.
    #[serde(default)]
    pub recognition: crate::documents::result::RecognitionConfig,
    /// Report settings: this facility's level, essential-medicine targets, waiting limit.
    #[serde(default)]
    pub reports: crate::reports::ReportsConfig,
}

impl NodeConfig {
    /// The time zone this facility reads dates in.
    pub fn zone(&self) -> TimeZone {
        self.facility.zone()
    }
}

/// A configuration file that could not be read or understood.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file could not be written.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this version of yilian.
    #[error("{path} is not a valid yilian configuration: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What the parser said, naming the field.
        message: String,
    },
}

impl NodeConfig {
    /// Reads and validates the configuration file.
    pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let cfg: NodeConfig = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        if cfg.storage.cache_docs == 0 {
            return Err(ConfigError::Invalid {
                path: path.display().to_string(),
                message: "storage.cache_docs must be at least 1".into(),
            });
        }
        cfg.reports
            .validate()
            .map_err(|message| ConfigError::Invalid {
                path: path.display().to_string(),
                message,
            })?;
        for p in &cfg.network.peers {
            check_peer_addr(p).map_err(|message| ConfigError::Invalid {
                path: path.display().to_string(),
                message,
            })?;
        }
        Ok(cfg)
    }

    /// Writes the file atomically.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let text = self.to_toml()?;
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|source| ConfigError::Write {
                path: path.display().to_string(),
                source,
            })
    }

    /// The file's text.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string_pretty(self).map_err(|e| ConfigError::Invalid {
            path: "yilian.toml".into(),
            message: e.to_string(),
        })
    }
}
