//! `yilian doc ...` and `yilian note ...`.

use std::path::Path;

use anyhow::{Context, Result, bail};
use yilian_node::control::proto::ListedDoc;
use yilian_node::control::{Request, Response};
use yilian_node::documents::DocInfo;
use yilian_node::storage::MAX_DOC_BYTES;

use crate::cli::{DocCommand, NoteCommand};
use crate::connect::one;
use crate::output;

pub(crate) async fn run(dir: &Path, cmd: DocCommand) -> Result<()> {
    match cmd {
        DocCommand::List { kind, json } => {
            let Response::Docs(docs) = one(dir, Request::DocList { kind, titles: true }).await?
            else {
                bail!("unexpected answer to doc list");
            };
            if json.json {
                return output::json(
                    &docs
                        .iter()
                        .map(|d| {
                            let mut v = info_json(&d.info);
                            v["title"] = d.title.clone().into();
                            v
                        })
                        .collect::<Vec<_>>(),
                );
            }
            let mut t = output::table(&["id", "kind", "title", "audience", "updated", "bytes"]);
            for ListedDoc { info: d, title } in &docs {
                t.add_row(vec![
                    d.id.to_string(),
                    d.kind.to_string(),
                    title.clone().unwrap_or_default(),
                    audience(d),
                    output::time(d.updated_ms),
                    d.stored_bytes.to_string(),
                ]);
            }
            output::line(t);
            output::note(format_args!("{} document(s)", docs.len()));
            Ok(())
        }
        DocCommand::Show { id, json } => {
            let Response::Doc {
                info,
                json: content,
            } = one(dir, Request::DocShow { id }).await?
            else {
                bail!("unexpected answer to doc show");
            };
            let content: serde_json::Value =
                serde_json::from_str(&content).context("the node sent invalid JSON")?;
            let mut v = info_json(&info);
            v["time_zone"] = output::zone_name().into();
            v["content"] = content;
            if json.json {
                return output::json(&v);
            }
            output::line(format_args!("id:       {}", info.id));
            output::line(format_args!("kind:     {}", info.kind));
            output::line(format_args!("audience: {}", audience(&info)));
            output::line(format_args!("updated:  {}", output::time(info.updated_ms)));
            output::line(format_args!("heads:    {}", info.heads_hex().join(", ")));
            output::line(serde_json::to_string_pretty(&v["content"])?);
            Ok(())
        }
        DocCommand::Export { id, out } => {
            let Response::Exported { info, bytes } = one(dir, Request::DocExport { id }).await?
            else {
                bail!("unexpected answer to doc export");
            };
            write_atomically(&out, &bytes)?;
            output::line(format_args!(
                "wrote {} ({} bytes) to {}",
                info.id,
                bytes.len(),
                out.display()
            ));
            Ok(())
        }
        DocCommand::Import {
            file,
            kind,
            audience,
            json,
        } => {
            let meta = std::fs::metadata(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            if meta.len() > MAX_DOC_BYTES as u64 {
                bail!(
                    "{} is {} bytes; a document may have at most {MAX_DOC_BYTES}",
                    file.display(),
                    meta.len()
                );
            }
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let resp = one(
                dir,
                Request::DocImport {
                    bytes,
                    kind,
                    audience,
                },
            )
            .await
            .with_context(|| format!("cannot import {}", file.display()))?;
            written(resp, json.json)
        }
    }
}

pub(crate) async fn note(dir: &Path, cmd: NoteCommand) -> Result<()> {
    match cmd {
        NoteCommand::Add {
            title,
            text,
            audience,
            json,
        } => written(
            one(
                dir,
                Request::NoteAdd {
                    title,
                    text,
                    audience,
                },
            )
            .await?,
            json.json,
        ),
        NoteCommand::Append { id, text, json } => {
            written(one(dir, Request::NoteAppend { id, text }).await?, json.json)
        }
    }
}

fn written(resp: Response, json: bool) -> Result<()> {
    let Response::Written(info) = resp else {
        bail!("unexpected answer to a write");
    };
    if json {
        return output::json(&info_json(&info));
    }
    output::line(format_args!("stored {} ({})", info.id, info.kind));
    Ok(())
}

fn audience(d: &DocInfo) -> String {
    d.audience
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// The stable JSON shape of a document's metadata (documented in docs/cli.md).
pub(crate) fn info_json(d: &DocInfo) -> serde_json::Value {
    serde_json::json!({
        "id": d.id.to_string(),
        "kind": d.kind.as_str(),
        "audience": d.audience.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        "heads": d.heads_hex(),
        "created_ms": d.created_ms,
        "updated_ms": d.updated_ms,
        "created_at": output::rfc3339(d.created_ms, output::zone()),
        "updated_at": output::rfc3339(d.updated_ms, output::zone()),
        "seq": d.seq,
        "stored_bytes": d.stored_bytes,
    })
}

/// Writes a file via a temporary file and rename, so a crash never leaves half a file.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(parent)
        .with_context(|| format!("cannot write in {}", parent.display()))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
