//! What each control request does. The service is the node's API: the control server calls
//! it for requests from the socket, and the CLI calls it directly when it works on a data
//! directory whose node is not running. Every write is durable before the answer is returned.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use automerge::Automerge;

use crate::config::{NodeConfig, check_peer_addr};
use crate::control::proto::{
    ErrorKind, IdentityReport, NetworkReport, Request, Response, StatusReport,
};
use crate::control::proto::{ListedDoc, ReferralSummary, ReferralView, ResultView, Unreadable};
use crate::datadir::DataDir;
use crate::documents::referral::{self, ActInput, ReferralInput};
use crate::documents::result::{self, QcCert, ResultInput, RetestReason, TestResult};
use crate::documents::{self, Audience, DocKind, note};
use crate::ids::{FacilityCode, NodeId};
use crate::revocation::Revocation;
use crate::storage::{StoreError, StoreHandle};
use crate::sync::SyncManager;
use crate::transport::{Network, PeerState, PeerStatus};

mod catalog;
mod outreach;
mod report;

/// Days before expiry from which status warns.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// Everything the service works with.
#[derive(Debug)]
pub struct ServiceParts {
    /// The data directory.
    pub dir: DataDir,
    /// The configuration as loaded.
    pub config: NodeConfig,
    /// The node id.
    pub node_id: NodeId,
    /// The store.
    pub store: StoreHandle,
    /// Revocation state and TLS material.
    pub revocation: Arc<Revocation>,
    /// The network, when running and enrolled.
    pub network: Option<Network>,
    /// Sync sessions, when the network runs.
    pub sync: Option<SyncManager>,
    /// Why the network is off, if it is.
    pub network_off: Option<String>,
    /// Whether this is a running node (it reports uptime).
    pub online: bool,
}

/// The node's API over its store and network.
#[derive(Debug)]
pub struct Service {
    dir: DataDir,
    config: Mutex<NodeConfig>,
    node_id: NodeId,
    store: StoreHandle,
    revocation: Arc<Revocation>,
    network: Option<Network>,
    sync: Option<SyncManager>,
    network_off: Option<String>,
    started: Option<Instant>,
}

/// A failed request: its class and message.
struct Failure(ErrorKind, String);

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match error_response(&e) {
            Response::Error { kind, message } => Failure(kind, message),
            _ => Failure(ErrorKind::Storage, e.to_string()),
        }
    }
}

/// A human-readable record number: `PREFIX-YYYYMMDD-XXXXXX` (the facility's local day of
/// `now_ms`, random tag).
fn day_number(prefix: &str, now_ms: u64, tz: &jiff::tz::TimeZone) -> String {
    let day = documents::local_date(now_ms, tz).strftime("%Y%m%d");
    let tag: [u8; 3] = crate::identity::random_bytes();
    format!("{prefix}-{day}-{:02X}{:02X}{:02X}", tag[0], tag[1], tag[2])
}

/// A fresh random key for a record in a shared map or list (16 hex characters).
fn random_key() -> String {
    let k: [u8; 8] = crate::identity::random_bytes();
    k.iter().map(|b| format!("{b:02x}")).collect()
}

fn invalid(m: impl std::fmt::Display) -> Failure {
    Failure(ErrorKind::InvalidInput, m.to_string())
}

impl Service {
    /// A service over its parts.
    pub fn new(p: ServiceParts) -> Service {
        Service {
            dir: p.dir,
            config: Mutex::new(p.config),
            node_id: p.node_id,
            store: p.store,
            revocation: p.revocation,
            network: p.network,
            sync: p.sync,
            network_off: p.network_off,
            started: p.online.then(Instant::now),
        }
    }

    /// The store handle.
    pub fn store(&self) -> &StoreHandle {
        &self.store
    }

    /// The network, if running.
    pub fn network(&self) -> Option<&Network> {
        self.network.as_ref()
    }

    fn config(&self) -> NodeConfig {
        self.config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Answers one request. Never panics on any request content.
    pub async fn handle(&self, req: Request) -> Response {
        match self.dispatch(req).await {
            Ok(r) => r,
            Err(Failure(kind, message)) => Response::Error { kind, message },
        }
    }

    fn audience(&self, codes: Vec<FacilityCode>) -> Audience {
        let mut a = Audience::new(codes);
        a.insert(self.config().facility.code);
        a
    }

    fn identity_report(&self) -> Option<IdentityReport> {
        let info = self.revocation.tls()?.info().clone();
        let now = documents::now_ms() as i64 / 1000;
        let tz = self.config().zone();
        let date = |secs: i64| {
            jiff::Timestamp::from_second(secs).map_or_else(
                |_| secs.to_string(),
                |t| {
                    t.to_zoned(tz.clone())
                        .strftime("%Y-%m-%d %H:%M")
                        .to_string()
                },
            )
        };
        let days = (info.not_after - now).div_euclid(86_400);
        let warning = if info.not_after <= now {
            Some(format!(
                "the node certificate EXPIRED on {}: peers refuse this node; ask county IT for a new certificate (yilian enroll request)",
                date(info.not_after)
            ))
        } else if info.not_before > now {
            Some(format!(
                "the node certificate is only valid from {}: is this machine's clock right?",
                date(info.not_before)
            ))
        } else if days < EXPIRY_WARNING_DAYS {
            Some(format!(
                "the node certificate expires in {days} day(s), on {}: ask county IT for a new one",
                date(info.not_after)
            ))
        } else {
            None
        };
        Some(IdentityReport {
            alliance: info.claims.alliance,
            roles: info.claims.roles,
            serial: info.serial,
            not_before: info.not_before,
            not_after: info.not_after,
            expires_in_days: days,
            warning,
        })
    }

    fn peers(&self) -> Vec<PeerStatus> {
        match &self.network {
            Some(n) => n.peers(),
            None => self
                .config()
                .network
                .peers
                .into_iter()
                .map(|addr| PeerStatus {
                    addr: Some(addr),
                    remote: None,
                    state: PeerState::Waiting,
                    peer: None,
                    outbound: None,
                    connected_since_ms: None,
                    last_seen_ms: None,
                    last_error: Some(
                        self.network_off
                            .clone()
                            .unwrap_or_else(|| "the node is not running".into()),
                    ),
                    next_attempt_ms: None,
                })
                .collect(),
        }
    }

    fn edit_config(&self, f: impl FnOnce(&mut NodeConfig) -> bool) -> Result<(), Failure> {
        let mut cfg = self.config.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = cfg.clone();
        if f(&mut next) {
            next.save(&self.dir.config_path())
                .map_err(|e| Failure(ErrorKind::Storage, e.to_string()))?;
            *cfg = next;
        }
        Ok(())
    }

    async fn dispatch(&self, req: Request) -> Result<Response, Failure> {
        match req {
            Request::Status => {
                let store = self.store.call(|b| b.stats()).await?;
                let cfg = self.config();
                Ok(Response::Status(Box::new(StatusReport {
                    version: crate::VERSION.to_string(),
                    node_id: self.node_id,
                    facility: cfg.facility,
                    uptime_secs: self.started.map(|s| s.elapsed().as_secs()),
                    store,
                    identity: self.identity_report(),
                    network: NetworkReport {
                        enabled: self.network.is_some(),
                        disabled_reason: self.network_off.clone().or_else(|| {
                            self.started
                                .is_none()
                                .then(|| "the node is not running".to_string())
                        }),
                        listen: self.network.as_ref().and_then(|n| n.local_addr()),
                        peers: self.peers(),
                        sync: self.sync.as_ref().map(|s| s.status()).unwrap_or_default(),
                    },
                })))
            }
            Request::DocList { kind, titles } => Ok(Response::Docs(
                self.store
                    .call(move |b| {
                        let mut out = Vec::new();
                        for info in b.list(kind)? {
                            let title = if titles {
                                b.read(&info.id, |d| documents::title(info.kind, d))?
                            } else {
                                None
                            };
                            out.push(ListedDoc { info, title });
                        }
                        Ok(out)
                    })
                    .await?,
            )),
            Request::DocShow { id } => Ok(self
                .store
                .call(move |b| {
                    let id = b.resolve(&id)?;
                    let json = b.read(&id, |d| documents::to_json(d).to_string())?;
                    Ok(Response::Doc {
                        info: b.info(&id)?,
                        json,
                    })
                })
                .await?),
            Request::DocExport { id } => Ok(self
                .store
                .call(move |b| {
                    let id = b.resolve(&id)?;
                    let bytes = b.export(&id)?;
                    Ok(Response::Exported {
                        info: b.info(&id)?,
                        bytes,
                    })
                })
                .await?),
            Request::DocImport {
                bytes,
                kind,
                audience,
            } => {
                let audience = self.audience(audience);
                let info = self
                    .store
                    .call(move |b| b.import(&bytes, kind, audience))
                    .await?;
                tracing::info!(doc = %info.id, kind = %info.kind, "document imported");
                Ok(Response::Written(info))
            }
            Request::NoteAdd {
                title,
                text,
                audience,
            } => {
                note::validate(&title, text.as_deref()).map_err(invalid)?;
                let audience = self.audience(audience);
                let by = self.config().facility.code;
                let info = self
                    .store
                    .call(move |b| {
                        let mut doc = Automerge::new().with_actor(b.actor().clone());
                        note::init(
                            &mut doc,
                            &title,
                            text.as_deref().map(|t| (&by, documents::now_ms(), t)),
                        )
                        .map_err(|e| StoreError::InvalidDocument(e.to_string()))?;
                        b.create(DocKind::Note, audience, doc)
                    })
                    .await?;
                tracing::info!(doc = %info.id, "note created");
                Ok(Response::Written(info))
            }
            Request::NoteAppend { id, text } => {
                let by = self.config().facility.code;
                let info = self
                    .store
                    .call(move |b| {
                        let id = b.resolve(&id)?;
                        if b.info(&id)?.kind != DocKind::Note {
                            return Err(StoreError::Invalid(format!(
                                "document {id} is not a note"
                            )));
                        }
                        let ((), info) = b.edit(&id, |d| {
                            note::append(d, &by, documents::now_ms(), &text)
                                .map_err(|e| StoreError::Invalid(e.to_string()))
                        })?;
                        Ok(info)
                    })
                    .await?;
                Ok(Response::Written(info))
            }
            Request::PeerList => Ok(Response::Peers(self.peers())),
            Request::PeerAdd { addr } => {
                let addr = check_peer_addr(&addr).map_err(invalid)?;
                self.edit_config(|c| {
                    let new = !c.network.peers.contains(&addr);
                    if new {
                        c.network.peers.push(addr.clone());
                    }
                    new
                })?;
                if let Some(n) = &self.network {
                    n.add_peer(&addr);
                }
                tracing::info!(peer = %addr, "peer added");
                Ok(Response::Peers(self.peers()))
            }
            Request::PeerRemove { addr } => {
                let addr = addr.trim().to_string();
                let mut found = false;
                self.edit_config(|c| {
                    let before = c.network.peers.len();
                    c.network.peers.retain(|p| p != &addr);
                    found = c.network.peers.len() != before;
                    found
                })?;
                if !found {
                    return Err(Failure(
                        ErrorKind::NotFound,
                        format!("no configured peer {addr}"),
                    ));
                }
                if let Some(n) = &self.network {
                    n.remove_peer(&addr);
                }
                tracing::info!(peer = %addr, "peer removed");
                Ok(Response::Peers(self.peers()))
            }
            Request::ReferralCreate { input } => self.referral_create(*input).await,
            Request::ReferralAct { id, act } => self.referral_edit(id, RefEdit::Act(act)).await,
            Request::ReferralNote { id, text } => self.referral_edit(id, RefEdit::Note(text)).await,
            Request::ReferralShow { id } => Ok(Response::Referral(Box::new(
                self.store
                    .call(move |b| {
                        let id = b.resolve(&id)?;
                        referral_view(b, &id)
                    })
                    .await?,
            ))),
            Request::ReferralList {
                status,
                direction,
                conflicts_only,
            } => {
                let (list, unreadable) = self
                    .store
                    .call(move |b| {
                        let mut out = Vec::new();
                        let mut unreadable = Vec::new();
                        for info in b.list(Some(DocKind::Referral))? {
                            let r = match b.read(&info.id, referral::read)? {
                                Ok(r) => r,
                                Err(reason) => {
                                    tracing::warn!(doc = %info.id, %reason, "unreadable referral document not listed");
                                    unreadable.push(Unreadable {
                                        id: info.id,
                                        reason,
                                    });
                                    continue;
                                }
                            };
                            let d = referral::derive(&r);
                            if status.is_some_and(|s| s != d.status)
                                || direction.is_some_and(|x| x != r.request.direction)
                                || (conflicts_only && !d.needs_reconciliation())
                            {
                                continue;
                            }
                            out.push(ReferralSummary {
                                id: info.id,
                                number: r.request.number,
                                direction: r.request.direction,
                                from: r.request.from.facility,
                                to: r.request.to.facility,
                                patient: r.request.patient.name,
                                urgency: r.request.urgency,
                                status: d.status,
                                slot: d.slot.clone(),
                                needs_reconciliation: d.needs_reconciliation(),
                                created_ms: r.request.created_ms,
                                updated_ms: info.updated_ms,
                            });
                        }
                        out.sort_by_key(|r| std::cmp::Reverse(r.created_ms));
                        Ok((out, unreadable))
                    })
                    .await?;
                Ok(Response::Referrals { list, unreadable })
            }
            Request::ResultAdd { input, audience } => self.result_add(*input, None, audience).await,
            Request::ResultCorrect { id, input } => self.result_add(*input, Some(id), vec![]).await,
            Request::ResultRetest { id, reason, text } => {
                self.result_retest(id, reason, text).await
            }
            Request::ResultShow { id } => Ok(Response::Result(Box::new(
                self.store
                    .call(move |b| {
                        let id = b.resolve(&id)?;
                        result_view(b, &id)
                    })
                    .await?,
            ))),
            Request::ResultList => Ok(Response::Results(
                self.store
                    .call(|b| {
                        let mut out = Vec::new();
                        for info in b.list(Some(DocKind::Result))? {
                            out.push(result_view(b, &info.id)?);
                        }
                        out.sort_by(|x, y| y.result.taken_at.cmp(&x.result.taken_at));
                        Ok(out)
                    })
                    .await?,
            )),
            Request::ResultCheck { id, on } => {
                let on = match on {
                    Some(d) => documents::validate::date("on", &d).map_err(invalid)?,
                    None => documents::today(&self.config().zone()),
                };
                let cfg = self.config().recognition;
                let (view, decision) = self
                    .store
                    .call(move |b| {
                        let id = b.resolve(&id)?;
                        let view = result_view(b, &id)?;
                        let certs: Vec<QcCert> = qc_certs(b)?.into_iter().map(|(_, c)| c).collect();
                        let by = view.superseded_by.map(|d| d.to_string());
                        let decision =
                            result::recognise(&view.result, by.as_deref(), &certs, &cfg, on);
                        Ok((view, decision))
                    })
                    .await?;
                Ok(Response::Recognition {
                    result: Box::new(view),
                    decision,
                    on: on.to_string(),
                })
            }
            Request::QcAdd { input } => {
                let cfg = self.config();
                if cfg.facility.kind != crate::config::FacilityKind::CountyHospital
                    && !self.roles().contains(&crate::identity::cert::Role::Qc)
                {
                    return Err(invalid(format!(
                        "{} may not record quality-control certifications: that needs the county hospital or a node with the qc role",
                        cfg.facility.code
                    )));
                }
                let cert = result::build_qc(*input).map_err(invalid)?;
                self.known_facility("facility", &cert.facility).await?;
                let number = cert.number.clone();
                let (id, cert) = self
                    .store
                    .call(move |b| {
                        let mut doc = Automerge::new().with_actor(b.actor().clone());
                        write_typed(&mut doc, &cert)?;
                        let info = b.create(
                            DocKind::QcCert,
                            Audience::new([FacilityCode::everyone()]),
                            doc,
                        )?;
                        Ok((info.id, cert))
                    })
                    .await?;
                tracing::info!(doc = %id, %number, "quality-control certification recorded");
                Ok(Response::QcCerts(vec![(id, cert)]))
            }
            Request::QcList => Ok(Response::QcCerts(self.store.call(qc_certs).await?)),
            Request::FacilityList => Ok(Response::Facilities(self.facilities().await?)),
            Request::CatalogImport { bytes, dry_run } => self.catalog_import(bytes, dry_run).await,
            Request::CatalogList {
                essential_only,
                search,
                include_withdrawn,
            } => {
                self.catalog_list(essential_only, search, include_withdrawn)
                    .await
            }
            Request::CatalogShow { code } => self.catalog_show(code).await,
            Request::StockSet {
                code,
                facility,
                available,
                quantity,
            } => self.stock_set(code, facility, available, quantity).await,
            Request::DispensingAdd { line } => self.dispensing_add(line).await,
            Request::DispensingImport { bytes, dry_run } => {
                self.dispensing_import(bytes, dry_run).await
            }
            Request::DispensingList { period, facility } => {
                self.dispensing_list(period, facility).await
            }
            Request::OutreachCreate { input } => self.outreach_create(*input).await,
            Request::OutreachVisit { id, input } => self.outreach_visit(id, input).await,
            Request::OutreachLecture { id, input } => self.outreach_lecture(id, input).await,
            Request::OutreachList => self.outreach_list().await,
            Request::OutreachShow { id } => self.outreach_show(id).await,
            Request::Report {
                kind,
                from,
                to,
                facility,
            } => self.report(kind, &from, &to, facility).await,
            Request::CrlInstall { pem } => {
                let (crl, dropped) = self.revocation.install(&pem).map_err(invalid)?;
                Ok(Response::CrlInstalled {
                    number: crl.number,
                    revoked: crl.revoked.len(),
                    dropped,
                })
            }
        }
    }
}

fn write_typed<T: autosurgeon::Reconcile>(
    doc: &mut Automerge,
    value: &T,
) -> Result<(), StoreError> {
    doc.transact::<_, _, autosurgeon::ReconcileError>(|tx| autosurgeon::reconcile(tx, value))
        .map(|_| ())
        .map_err(|f| StoreError::InvalidDocument(f.error.to_string()))
}

fn read_typed<T: autosurgeon::Hydrate>(doc: &Automerge, what: &str) -> Result<T, StoreError> {
    autosurgeon::hydrate(doc)
        .map_err(|e| StoreError::Invalid(format!("not a readable {what}: {e}")))
}

fn result_view(
    b: &mut crate::storage::Batch<'_>,
    id: &crate::ids::DocId,
) -> Result<ResultView, StoreError> {
    let info = b.info(id)?;
    if info.kind != DocKind::Result {
        return Err(StoreError::Invalid(format!(
            "document {id} is not a result"
        )));
    }
    let result: TestResult = b.read(id, |d| read_typed(d, "result"))??;
    let key = id.to_string();
    let mut superseded_by = None;
    for other in b.list(Some(DocKind::Result))? {
        if other.id != *id {
            let s: Option<String> = b.read(&other.id, |d| {
                read_typed::<TestResult>(d, "result")
                    .ok()
                    .and_then(|r| r.supersedes)
            })?;
            if s.as_deref() == Some(key.as_str()) {
                superseded_by = Some(other.id);
            }
        }
    }
    Ok(ResultView {
        info,
        result,
        superseded_by,
    })
}

fn qc_certs(
    b: &mut crate::storage::Batch<'_>,
) -> Result<Vec<(crate::ids::DocId, QcCert)>, StoreError> {
    let mut out = Vec::new();
    for info in b.list(Some(DocKind::QcCert))? {
        if let Ok(c) = b.read(&info.id, |d| read_typed::<QcCert>(d, "certification"))? {
            out.push((info.id, c));
        }
    }
    Ok(out)
}

enum RefEdit {
    Act(ActInput),
    Note(String),
}

fn referral_view(
    b: &mut crate::storage::Batch<'_>,
    id: &crate::ids::DocId,
) -> Result<ReferralView, StoreError> {
    let info = b.info(id)?;
    if info.kind != DocKind::Referral {
        return Err(StoreError::Invalid(format!(
            "document {id} is not a referral"
        )));
    }
    let referral = b
        .read(id, referral::read)?
        .map_err(|why| StoreError::Invalid(format!("document {id} (kind referral): {why}")))?;
    let derived = referral::derive(&referral);
    Ok(ReferralView {
        info,
        referral,
        derived,
    })
}

impl Service {
    async fn result_add(
        &self,
        input: ResultInput,
        corrects: Option<String>,
        audience: Vec<FacilityCode>,
    ) -> Result<Response, Failure> {
        let me = self.config().facility.code;
        let view = self
            .store
            .call(move |b| {
                let (supersedes, audience) = match corrects {
                    Some(old) => {
                        let old = b.resolve(&old)?;
                        let v = result_view(b, &old)?;
                        if v.result.facility != me.as_str() {
                            return Err(StoreError::Invalid(format!(
                                "only the performing facility {} can correct this result",
                                v.result.facility
                            )));
                        }
                        if let Some(by) = v.superseded_by {
                            return Err(StoreError::Invalid(format!(
                                "this result was already corrected by {by}; correct that one"
                            )));
                        }
                        (Some(old.to_string()), v.info.audience)
                    }
                    None if audience.is_empty() => {
                        (None, Audience::new([FacilityCode::everyone()]))
                    }
                    None => {
                        let mut a = Audience::new(audience);
                        a.insert(me.clone());
                        (None, a)
                    }
                };
                let r = result::build(input, me.as_str(), supersedes)
                    .map_err(|e| StoreError::Invalid(e.to_string()))?;
                let mut doc = Automerge::new().with_actor(b.actor().clone());
                write_typed(&mut doc, &r)?;
                let info = b.create(DocKind::Result, audience, doc)?;
                result_view(b, &info.id)
            })
            .await?;
        tracing::info!(doc = %view.info.id, item = %view.result.item.code, "result recorded");
        Ok(Response::Result(Box::new(view)))
    }

    /// The facilities this node has met: those stored, and those connected now whose session
    /// has not yet recorded them (a peer shows as connected a moment before its session
    /// writes it down; an operator who sees it in `peer list` can already name it).
    async fn facilities(&self) -> Result<Vec<crate::storage::FacilityEntry>, Failure> {
        let mut known = self.store.call(|b| b.facilities()).await?;
        let live = self.network.as_ref().map(|n| n.peers()).unwrap_or_default();
        for p in live {
            if p.state != PeerState::Connected {
                continue;
            }
            let Some(peer) = p.peer else { continue };
            if known.iter().any(|f| f.code == peer.facility.as_str()) {
                continue;
            }
            known.push(crate::storage::FacilityEntry {
                code: peer.facility.to_string(),
                name: peer.name,
                kind: peer.kind,
                node: peer.node_id,
                seen_ms: p.connected_since_ms.unwrap_or_else(documents::now_ms),
            });
        }
        known.sort_by(|a, b| a.code.cmp(&b.code));
        Ok(known)
    }

    /// Checks that `code` is this facility or one this node has met in the alliance. A node
    /// that has met nobody yet (never connected) cannot tell and accepts a well-formed code.
    async fn known_facility(&self, field: &str, code: &str) -> Result<(), Failure> {
        let me = self.config().facility.code;
        if code == me.as_str() {
            return Ok(());
        }
        let known = self.facilities().await?;
        if known.is_empty() || known.iter().any(|f| f.code == code) {
            return Ok(());
        }
        let codes: Vec<&str> = known.iter().map(|f| f.code.as_str()).collect();
        Err(invalid(format!(
            "{field}: {code} is not a facility of the alliance this node knows (known: {}, {me}); check the code",
            codes.join(", ")
        )))
    }

    async fn result_retest(
        &self,
        id: String,
        reason: RetestReason,
        text: Option<String>,
    ) -> Result<Response, Failure> {
        let text = text.filter(|t| !t.trim().is_empty());
        if reason == RetestReason::Other && text.is_none() {
            return Err(invalid("text: is required when the reason is other"));
        }
        let text = text
            .map(|t| documents::validate::text("text", &t, 2000))
            .transpose()
            .map_err(invalid)?;
        let me = self.config().facility.code;
        let view = self
            .store
            .call(move |b| {
                let id = b.resolve(&id)?;
                result_view(b, &id)?;
                b.edit(&id, |d| {
                    let mut r: TestResult = read_typed(d, "result")?;
                    r.retests.push(result::Retest {
                        at: documents::now_ms(),
                        by: me.to_string(),
                        reason,
                        text,
                    });
                    write_typed(d, &r)
                })?;
                result_view(b, &id)
            })
            .await?;
        tracing::info!(doc = %view.info.id, "re-test recorded");
        Ok(Response::Result(Box::new(view)))
    }

    async fn referral_create(&self, input: ReferralInput) -> Result<Response, Failure> {
        let cfg = self.config();
        let me = cfg.facility.code.clone();
        let now = documents::now_ms();
        let number = day_number(me.as_str(), now, &cfg.zone());
        let r = referral::build(input, &me, cfg.facility.kind, number, now, &cfg.zone())
            .map_err(invalid)?;
        self.known_facility("to", &r.request.to.facility).await?;
        let audience = Audience::new(
            [&r.request.from.facility, &r.request.to.facility]
                .into_iter()
                .filter_map(|c| c.parse().ok()),
        );
        let number = r.request.number.clone();
        let view = self
            .store
            .call(move |b| {
                let mut doc = Automerge::new().with_actor(b.actor().clone());
                referral::write(&mut doc, &r).map_err(StoreError::InvalidDocument)?;
                let info = b.create(DocKind::Referral, audience, doc)?;
                referral_view(b, &info.id)
            })
            .await?;
        // The number and id identify the referral; no patient data goes to the log.
        tracing::info!(doc = %view.info.id, %number, "referral created");
        Ok(Response::Referral(Box::new(view)))
    }

    async fn referral_edit(&self, id: String, edit: RefEdit) -> Result<Response, Failure> {
        let cfg = self.config();
        let me = cfg.facility.code.clone();
        let kind = cfg.facility.kind;
        let node = self.node_id.to_string();
        let view = self
            .store
            .call(move |b| {
                let id = b.resolve(&id)?;
                referral_view(b, &id)?;
                b.edit(&id, |d| {
                    let mut r = referral::read(d).map_err(StoreError::Invalid)?;
                    let now = documents::now_ms();
                    match edit {
                        RefEdit::Act(input) => {
                            let act_id = random_key();
                            let a = referral::make_act(&r, &me, kind, &node, now, act_id, input)
                                .map_err(|e| StoreError::Invalid(e.to_string()))?;
                            r.acts.push(a);
                        }
                        RefEdit::Note(text) => {
                            let text = documents::validate::text("text", &text, 4000)
                                .map_err(|e| StoreError::Invalid(e.to_string()))?;
                            let party = [&r.request.from.facility, &r.request.to.facility];
                            if !party.contains(&&me.to_string())
                                && kind != crate::config::FacilityKind::CountyHospital
                            {
                                return Err(StoreError::Invalid(format!(
                                    "{me} is not a party to referral {}",
                                    r.request.number
                                )));
                            }
                            r.notes.push(referral::Note {
                                at: now,
                                by: me.to_string(),
                                text,
                            });
                        }
                    }
                    referral::write(d, &r).map_err(StoreError::InvalidDocument)
                })?;
                referral_view(b, &id)
            })
            .await?;
        tracing::info!(doc = %view.info.id, number = %view.referral.request.number, status = view.derived.status.as_str(), "referral updated");
        Ok(Response::Referral(Box::new(view)))
    }
}

/// The response for a failed store operation.
pub fn error_response(e: &StoreError) -> Response {
    let kind = match e {
        StoreError::NotFound(_) => ErrorKind::NotFound,
        StoreError::Ambiguous { .. } | StoreError::InvalidDocument(_) | StoreError::Invalid(_) => {
            ErrorKind::InvalidInput
        }
        StoreError::Closed => ErrorKind::Unavailable,
        _ => ErrorKind::Storage,
    };
    Response::Error {
        kind,
        message: e.to_string(),
    }
}
