//! The drug catalog, stock rows and dispensing summaries: who may write what (the pharmacy
//! role edits entries, each facility only its own stock and dispensing rows), and imports that
//! are planned in full and written in one transaction or not at all.

use std::collections::BTreeMap;

use automerge::Automerge;

use super::{Failure, Service, invalid};
use crate::control::proto::{CatalogLine, Response};
use crate::documents::catalog::{self, CatalogEntry, StockRow};
use crate::documents::dispensing::{self, DispensedRow, DispensingLine, Level, Summary};
use crate::documents::{self, Audience, DocKind};
use crate::identity::cert::Role;
use crate::ids::{DocId, FacilityCode};
use crate::storage::{Batch, StoreError};

/// Writes a well-known document: creates it (audience everyone) if this node lacks it.
pub(super) fn upsert(
    b: &mut Batch<'_>,
    id: DocId,
    kind: DocKind,
    f: impl FnOnce(&mut Automerge) -> Result<(), String>,
) -> Result<(), StoreError> {
    if b.exists(&id)? {
        b.edit(&id, |d| f(d).map_err(StoreError::InvalidDocument))?;
    } else {
        let mut doc = Automerge::new().with_actor(b.actor().clone());
        f(&mut doc).map_err(StoreError::InvalidDocument)?;
        b.insert_new(id, kind, Audience::new([FacilityCode::everyone()]), doc)?;
    }
    Ok(())
}

/// The catalog this node holds (empty if none yet).
pub(super) fn catalog_entries(
    b: &mut Batch<'_>,
) -> Result<BTreeMap<String, CatalogEntry>, StoreError> {
    let id = catalog::catalog_id();
    if !b.exists(&id)? {
        return Ok(BTreeMap::new());
    }
    b.read(&id, catalog::read_catalog)?
        .map_err(StoreError::Invalid)
}

fn stock_rows(b: &mut Batch<'_>, facility: &str) -> Result<BTreeMap<String, StockRow>, StoreError> {
    let id = catalog::stock_id(facility);
    if !b.exists(&id)? {
        return Ok(BTreeMap::new());
    }
    Ok(b.read(&id, catalog::read_stock)?
        .map_err(StoreError::Invalid)?
        .1)
}

/// Every dispensing summary this node holds.
pub(super) fn summaries(b: &mut Batch<'_>) -> Result<Vec<Summary>, StoreError> {
    let mut out = Vec::new();
    for info in b.list(Some(DocKind::Dispensing))? {
        match b.read(&info.id, dispensing::read)? {
            Ok(s) => out.push(s),
            Err(e) => {
                tracing::warn!(doc = %info.id, error = %e, "unreadable dispensing summary skipped")
            }
        }
    }
    Ok(out)
}

/// One catalog entry, read without reading the others.
fn catalog_entry(b: &mut Batch<'_>, code: &str) -> Result<Option<CatalogEntry>, StoreError> {
    let id = catalog::catalog_id();
    if !b.exists(&id)? {
        return Ok(None);
    }
    b.read(&id, |d| documents::keyed::record::<CatalogEntry>(d, code))?
        .map_err(StoreError::Invalid)
}

/// Checks that `code` is in the catalog, reading only that entry.
fn require_entry(b: &mut Batch<'_>, code: &str) -> Result<(), StoreError> {
    match catalog_entry(b, code)? {
        Some(_) => Ok(()),
        None if !b.exists(&catalog::catalog_id())? => require_known(&BTreeMap::new(), code),
        None => Err(StoreError::Invalid(format!(
            "code: {code} is not in the county catalog"
        ))),
    }
}

fn require_known(catalog: &BTreeMap<String, CatalogEntry>, code: &str) -> Result<(), StoreError> {
    if catalog.is_empty() {
        return Err(StoreError::Invalid(
            "this node holds no drug catalog yet: sync with the county hospital (or import one on a pharmacy node) first".into(),
        ));
    }
    if !catalog.contains_key(code) {
        return Err(StoreError::Invalid(format!(
            "code: {code} is not in the county catalog"
        )));
    }
    Ok(())
}

impl Service {
    /// The roles in this node's certificate (none before enrollment).
    pub(super) fn roles(&self) -> Vec<Role> {
        self.revocation
            .tls()
            .map(|t| t.info().claims.roles.clone())
            .unwrap_or_default()
    }

    fn require_pharmacy(&self) -> Result<(), Failure> {
        if self.roles().contains(&Role::Pharmacy) {
            return Ok(());
        }
        let me = self.config().facility.code;
        Err(invalid(format!(
            "{me} may not edit the drug catalog: only a node whose certificate has the pharmacy role can \
             (ask the alliance CA for `ca issue --roles pharmacy`); stock rows are edited with `catalog stock set`"
        )))
    }

    pub(super) async fn catalog_import(
        &self,
        bytes: Vec<u8>,
        dry_run: bool,
    ) -> Result<Response, Failure> {
        self.require_pharmacy()?;
        let me = self.config().facility.code.to_string();
        let report = self
            .store
            .call(move |b| {
                let current = catalog_entries(b)?;
                let (mut report, mut writes) =
                    catalog::plan_import(&bytes, &current, &me, documents::now_ms())
                        .map_err(|e| StoreError::Invalid(e.to_string()))?;
                // Reports for past periods read the flag then in force.
                for w in &mut writes {
                    w.carry_history(current.get(&w.code));
                }
                if !dry_run && report.rejected.is_empty() && !writes.is_empty() {
                    upsert(b, catalog::catalog_id(), DocKind::Catalog, |d| {
                        catalog::write_entries(d, &writes)
                    })?;
                    report.applied = true;
                }
                Ok(report)
            })
            .await?;
        tracing::info!(
            rows = report.rows,
            added = report.added.len(),
            changed = report.changed.len(),
            withdrawn = report.withdrawn.len(),
            rejected = report.rejected.len(),
            applied = report.applied,
            "catalog import"
        );
        Ok(Response::CatalogImported(Box::new(report)))
    }

    pub(super) async fn catalog_list(
        &self,
        essential_only: bool,
        search: Option<String>,
        include_withdrawn: bool,
    ) -> Result<Response, Failure> {
        let me = self.config().facility.code.to_string();
        let search = search
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty());
        let lines = self
            .store
            .call(move |b| {
                let entries = catalog_entries(b)?;
                let mut stock = stock_rows(b, &me)?;
                Ok(entries
                    .into_values()
                    .filter(|e| !essential_only || e.essential)
                    .filter(|e| include_withdrawn || e.status == catalog::EntryStatus::Active)
                    .filter(|e| {
                        search.as_ref().is_none_or(|s| {
                            e.code.to_lowercase().contains(s)
                                || e.generic_name.to_lowercase().contains(s)
                                || e.manufacturer.to_lowercase().contains(s)
                        })
                    })
                    .map(|entry| CatalogLine {
                        stock: stock.remove(&entry.code),
                        entry,
                    })
                    .collect())
            })
            .await?;
        Ok(Response::CatalogEntries(lines))
    }

    pub(super) async fn catalog_show(&self, code: String) -> Result<Response, Failure> {
        let code = code.trim().to_ascii_uppercase();
        let (entry, stock) = self
            .store
            .call(move |b| {
                let entry = catalog_entry(b, &code)?
                    .ok_or_else(|| StoreError::NotFound(format!("drug {code} in the catalog")))?;
                let mut stock = Vec::new();
                for info in b.list(Some(DocKind::Stock))? {
                    let row = b.read(&info.id, |d| {
                        let facility = documents::keyed::scalar_str(d, "facility");
                        let row = documents::keyed::record::<StockRow>(d, &code)
                            .ok()
                            .flatten();
                        facility.zip(row)
                    })?;
                    stock.extend(row);
                }
                stock.sort_by(|a, b| a.0.cmp(&b.0));
                Ok((entry, stock))
            })
            .await?;
        Ok(Response::CatalogItem {
            entry: Box::new(entry),
            stock,
        })
    }

    pub(super) async fn stock_set(
        &self,
        code: String,
        facility: Option<FacilityCode>,
        available: bool,
        quantity: Option<u64>,
    ) -> Result<Response, Failure> {
        let me = self.config().facility.code;
        if let Some(f) = facility.filter(|f| *f != me) {
            return Err(invalid(format!(
                "{me} may write only its own stock rows, not {f}'s: each facility keeps its own stock"
            )));
        }
        let code = catalog::check_code(&code).map_err(invalid)?;
        let me_text = me.to_string();
        let shown = code.clone();
        self.store
            .call(move |b| {
                require_entry(b, &code)?;
                let row = StockRow {
                    available,
                    quantity,
                    updated_ms: documents::now_ms(),
                };
                upsert(b, catalog::stock_id(&me_text), DocKind::Stock, |d| {
                    catalog::write_stock(d, &me_text, &code, &row)
                })
            })
            .await?;
        tracing::info!(code = %shown, available, "stock row written");
        self.catalog_show(shown).await
    }

    fn level(&self) -> Level {
        let cfg = self.config();
        cfg.reports
            .level
            .unwrap_or_else(|| Level::of_kind(cfg.facility.kind))
    }

    /// Writes dispensing lines of this facility, grouped by month, in one storage call.
    async fn dispensing_write(&self, lines: Vec<DispensingLine>) -> Result<(), Failure> {
        let me = self.config().facility.code.to_string();
        let level = self.level();
        self.store
            .call(move |b| {
                let mut by_period: BTreeMap<String, Vec<(String, DispensedRow)>> = BTreeMap::new();
                let now = documents::now_ms();
                for l in lines {
                    by_period.entry(l.period).or_default().push((
                        l.code,
                        DispensedRow {
                            quantity: l.quantity,
                            amount_fen: l.amount_fen,
                            updated_ms: now,
                        },
                    ));
                }
                for (period, rows) in by_period {
                    upsert(
                        b,
                        dispensing::summary_id(&me, &period),
                        DocKind::Dispensing,
                        |d| dispensing::write(d, &me, level, &period, &rows),
                    )?;
                }
                Ok(())
            })
            .await?;
        Ok(())
    }

    pub(super) async fn dispensing_add(&self, line: DispensingLine) -> Result<Response, Failure> {
        let period = dispensing::check_period(&line.period).map_err(invalid)?;
        let code = catalog::check_code(&line.code).map_err(invalid)?;
        let checked = code.clone();
        self.store.call(move |b| require_entry(b, &checked)).await?;
        let line = DispensingLine {
            period: period.clone(),
            code,
            ..line
        };
        self.dispensing_write(vec![line]).await?;
        self.dispensing_list(Some(period), Some(self.config().facility.code))
            .await
    }

    pub(super) async fn dispensing_import(
        &self,
        bytes: Vec<u8>,
        dry_run: bool,
    ) -> Result<Response, Failure> {
        let known = self.store.call(catalog_entries).await?;
        if known.is_empty() {
            return Err(invalid(
                "this node holds no drug catalog yet: sync with the county hospital first, so codes can be checked",
            ));
        }
        let (mut report, lines) =
            dispensing::parse_file(&bytes, |c| known.contains_key(c)).map_err(invalid)?;
        if !dry_run && report.rejected.is_empty() && !lines.is_empty() {
            self.dispensing_write(lines).await?;
            report.applied = true;
        }
        tracing::info!(
            rows = report.rows,
            recorded = report.recorded,
            rejected = report.rejected.len(),
            applied = report.applied,
            "dispensing import"
        );
        Ok(Response::DispensingImported(Box::new(report)))
    }

    pub(super) async fn dispensing_list(
        &self,
        period: Option<String>,
        facility: Option<FacilityCode>,
    ) -> Result<Response, Failure> {
        let period = period
            .map(|p| dispensing::check_period(&p))
            .transpose()
            .map_err(invalid)?;
        let mut all = self.store.call(summaries).await?;
        all.retain(|s| {
            period.as_ref().is_none_or(|p| &s.period == p)
                && facility.as_ref().is_none_or(|f| s.facility == f.as_str())
        });
        all.sort_by(|a, b| (&a.period, &a.facility).cmp(&(&b.period, &b.facility)));
        Ok(Response::Dispensing(all))
    }
}
