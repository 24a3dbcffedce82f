//! Reports: gathers the documents a report needs in one storage call and hands them to the
//! pure functions of [`crate::reports`].

use super::catalog::{catalog_entries, summaries};
use super::outreach::events;
use super::{Failure, Service, invalid, read_typed};
use crate::config::FacilityKind;
use crate::control::proto::Response;
use crate::documents::result::{QcCert, TestResult};
use crate::documents::{self, DocKind, referral};
use crate::ids::FacilityCode;
use crate::reports::{self, Period, Report, ReportKind};
use crate::storage::StoreError;

impl Service {
    pub(super) async fn report(
        &self,
        kind: ReportKind,
        from: &str,
        to: &str,
        facility: Option<FacilityCode>,
    ) -> Result<Response, Failure> {
        let from = documents::validate::date("from", from).map_err(invalid)?;
        let to = documents::validate::date("to", to).map_err(invalid)?;
        let period = Period::new(from, to).map_err(invalid)?;
        Ok(Response::Report(Box::new(
            self.compute_report(kind, period, facility).await?,
        )))
    }

    /// Computes one report over what this node holds.
    pub(super) async fn compute_report(
        &self,
        kind: ReportKind,
        period: Period,
        facility: Option<FacilityCode>,
    ) -> Result<Report, Failure> {
        let cfg = self.config();
        let tz = cfg.zone();
        let f = facility.map(|f| f.to_string());
        let me = cfg.facility.clone();
        let report = self
            .store
            .call(move |b| {
                let f = f.as_deref();
                Ok(match kind {
                    ReportKind::Referrals => {
                        let mut data = Vec::new();
                        for info in b.list(Some(DocKind::Referral))? {
                            if let Ok(r) = b.read(&info.id, referral::read)? {
                                data.push(r);
                            }
                        }
                        let as_of = period.end_ms(&tz).min(documents::now_ms() as i64);
                        Report::Referrals(reports::referrals::report(
                            &data,
                            period,
                            f,
                            cfg.reports.waiting_limit_hours,
                            as_of.max(0) as u64,
                            &tz,
                        ))
                    }
                    ReportKind::Recognition => {
                        let mut results = Vec::new();
                        for info in b.list(Some(DocKind::Result))? {
                            if let Ok(r) =
                                b.read(&info.id, |d| read_typed::<TestResult>(d, "result"))?
                            {
                                results.push((info.id.to_string(), r));
                            }
                        }
                        // A correction names the document it supersedes.
                        let superseded: std::collections::BTreeSet<String> = results
                            .iter()
                            .filter_map(|(_, r)| r.supersedes.clone())
                            .collect();
                        let mut certs = Vec::new();
                        for info in b.list(Some(DocKind::QcCert))? {
                            if let Ok(c) =
                                b.read(&info.id, |d| read_typed::<QcCert>(d, "certification"))?
                            {
                                certs.push(c);
                            }
                        }
                        let data: Vec<(TestResult, bool)> = results
                            .into_iter()
                            .map(|(id, r)| {
                                let s = superseded.contains(&id);
                                (r, s)
                            })
                            .collect();
                        Report::Recognition(reports::recognition::report(
                            &data,
                            &certs,
                            &cfg.recognition,
                            period,
                            f,
                            &tz,
                        ))
                    }
                    ReportKind::EssentialDrugs => {
                        Report::EssentialDrugs(reports::essential::report(
                            &summaries(b)?,
                            &catalog_entries(b)?,
                            &cfg.reports,
                            period,
                            f,
                            &tz,
                        ))
                    }
                    ReportKind::Outreach => {
                        let evs: Vec<(String, _)> = events(b)?
                            .into_iter()
                            .map(|(id, e)| (id.to_string(), e))
                            .collect();
                        let mut towns: Vec<String> = b
                            .facilities()?
                            .into_iter()
                            .filter(|x| x.kind == FacilityKind::TownshipCenter)
                            .map(|x| x.code)
                            .collect();
                        if me.kind == FacilityKind::TownshipCenter {
                            towns.push(me.code.to_string());
                        }
                        towns.sort();
                        towns.dedup();
                        Report::Outreach(reports::outreach::report(&evs, &towns, period, f))
                    }
                })
            })
            .await
            .map_err(|e: StoreError| Failure::from(e))?;
        Ok(report)
    }
}
