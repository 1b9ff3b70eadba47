//! `/api/admin/…` routes that span both capabilities.

use serde_json::json;
use worker::{Method, Request, Response};

use crate::error::{Error, Result};
use crate::http::{self, App};
use crate::{files, omi};

pub async fn dispatch(req: Request, app: &App, rest: &[&str]) -> Result<Response> {
    match (rest, req.method()) {
        (["consistency"], Method::Get) => consistency(&req, app).await,
        (["consistency"], _) => http::method_not_allowed(&["GET"]),
        _ => Err(Error::NotFound(format!("no route for {} /api/admin/{}", req.method(), rest.join("/")))),
    }
}

/// `GET /api/admin/consistency`: D1 against R2, section by section.
async fn consistency(req: &Request, app: &App) -> Result<Response> {
    app.require_api_token(req)?;
    let (mut sections, omi_complete, index_without_version) = omi::consistency::check(app).await?;
    let (files_sections, files_complete) = files::consistency::check(app).await?;
    sections.extend(files_sections);
    let complete = omi_complete && files_complete;
    let clean = complete && index_without_version == 0 && sections.iter().all(|s| s.clean());
    http::ok(&json!({
        "success": true,
        "clean": clean,
        "complete": complete,
        "totals": {
            "rowsWithoutObjects": sections.iter().map(|s| s.rows_without_objects).sum::<usize>(),
            "objectsWithoutRows": sections.iter().map(|s| s.objects_without_rows).sum::<usize>(),
            "shaMismatches": sections.iter().map(|s| s.sha_mismatches).sum::<usize>(),
            "indexRowsWithoutVersion": index_without_version,
        },
        "sections": sections,
    }))
}
