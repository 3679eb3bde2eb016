//! The images allowlist, `/pods/images`: everyone reads the entries that concern their
//! tenant; only tenant admins change them (Tapis let anyone), and only site admins write
//! entries that span tenants.
//!
//! Entries live in one document per scope (a tenant, or `*` for site-wide entries), so the
//! check on a pod creation is two reads, whatever the size of the store; the check reads
//! them through a short-lived cache ([`AllowlistCache`]), so a stream of creations costs no
//! reads at all. Listing and changing the allowlist always read the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use corral_model::images::{GLOBAL_SCOPE, Image, NewImage, check};
use corral_store::{StoreError, Versioned};
use serde_json::{Value, json};

use super::{Ctx, now_ms};
use crate::AppState;
use crate::envelope::Outcome;
use crate::error::ApiError;
use crate::view::iso;

/// Document kind of allowlists, one per scope (named by the tenant, or `*`).
pub const IMAGES_KIND: &str = "pods_images";

/// Compare-and-set attempts before giving up on an allowlist that keeps changing.
const MAX_ATTEMPTS: usize = 8;

/// How long the creation check trusts an allowlist it read. A change made through another
/// gateway is enforced here after at most this long; one made through this gateway at once.
pub const CACHE_TTL: Duration = Duration::from_secs(1);

/// Allowlists (per scope) the creation check read recently, with when they were read.
#[derive(Debug, Default)]
pub struct AllowlistCache {
    inner: Mutex<Cached>,
}

#[derive(Debug, Default)]
struct Cached {
    scopes: HashMap<String, (Instant, Arc<Vec<Image>>)>,
    /// Bumped by every change made here: a read that began before a change must not be
    /// cached after it.
    changes: u64,
}

impl AllowlistCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Cached> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The fresh entry of `scope`, or the change count to hand to [`Self::put`].
    fn get(&self, scope: &str, now: Instant) -> Result<Arc<Vec<Image>>, u64> {
        let cached = self.lock();
        match cached.scopes.get(scope) {
            Some((at, list)) if now.duration_since(*at) < CACHE_TTL => Ok(Arc::clone(list)),
            _ => Err(cached.changes),
        }
    }

    fn put(&self, scope: &str, read_at: Instant, changes: u64, list: Arc<Vec<Image>>) {
        let mut cached = self.lock();
        if cached.changes != changes {
            return;
        }
        // Scopes are tenants: few, but drop the expired ones rather than keep every tenant
        // ever seen.
        cached.scopes.retain(|_, (at, _)| read_at.duration_since(*at) < CACHE_TTL);
        cached.scopes.insert(scope.to_string(), (read_at, list));
    }

    /// Forgets a scope this gateway just changed.
    fn invalidate(&self, scope: &str) {
        let mut cached = self.lock();
        cached.changes = cached.changes.wrapping_add(1);
        cached.scopes.remove(scope);
    }
}

fn render(img: &Image) -> Value {
    json!({
        "image": img.image,
        "tenants": img.tenants,
        "description": img.description,
        "added_by": img.added_by,
        "creation_ts": iso(img.creation_ts),
    })
}

/// The entries of one scope, with the document version (0 when there is none).
async fn load_scope(st: &AppState, scope: &str) -> Result<Versioned<Vec<Image>>, ApiError> {
    match st.store().get_doc(IMAGES_KIND, scope).await? {
        Some(doc) => {
            let list = serde_json::from_str(&doc.value)
                .map_err(|e| ApiError::from(StoreError::Corrupt(format!("stored allowlist is unreadable: {e}"))))?;
            Ok(Versioned { version: doc.version, value: list })
        }
        None => Ok(Versioned { version: 0, value: Vec::new() }),
    }
}

/// Every entry that can concern `tenant`: its own, then the site-wide ones.
async fn entries_for(st: &AppState, tenant: &str) -> Result<Vec<Image>, ApiError> {
    let mut all = load_scope(st, tenant).await?.value;
    all.extend(load_scope(st, GLOBAL_SCOPE).await?.value);
    Ok(all)
}

/// One scope's entries through the cache. The time is taken before the read, so an entry
/// never looks fresher than the data it holds.
async fn cached_scope(st: &AppState, scope: &str) -> Result<Arc<Vec<Image>>, ApiError> {
    let cache = st.allowlists();
    let now = Instant::now();
    let changes = match cache.get(scope, now) {
        Ok(list) => return Ok(list),
        Err(changes) => changes,
    };
    let list = Arc::new(load_scope(st, scope).await?.value);
    cache.put(scope, now, changes, Arc::clone(&list));
    Ok(list)
}

/// Refuses `image` for `tenant` when enforcement is on and nothing allows it: a 400 that
/// names the image and the rule.
pub async fn enforce(st: &AppState, tenant: &str, image: &str) -> Result<(), ApiError> {
    let cfg = &st.config().images;
    if !cfg.enforce {
        return Ok(());
    }
    let own = cached_scope(st, tenant).await?;
    let global = cached_scope(st, GLOBAL_SCOPE).await?;
    let entries: Vec<Image> = own.iter().chain(global.iter()).cloned().collect();
    check(image, tenant, &entries, &cfg.allow)
        .map(|_| ())
        .map_err(|why| ApiError::invalid("pod", vec![corral_model::FieldError::new("image", why)]))
}

fn require_admin(ctx: &Ctx) -> Result<(), ApiError> {
    if ctx.caller.admin || ctx.caller.site_admin {
        Ok(())
    } else {
        Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "only tenant admins may change the images allowlist (see auth.admin_users)",
        ))
    }
}

/// Where an entry is stored: the caller's tenant when it concerns only that tenant;
/// site-wide (site admins only) otherwise.
fn scope_of(ctx: &Ctx, new: &NewImage) -> Result<String, ApiError> {
    let tenant = &ctx.caller.tenant;
    let own_only = new.tenants.iter().all(|t| t.strip_prefix('-').unwrap_or(t) == tenant);
    if own_only {
        Ok(tenant.clone())
    } else if ctx.caller.site_admin {
        Ok(GLOBAL_SCOPE.to_string())
    } else {
        Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            format!(
                "a tenant admin may only write entries for tenant '{tenant}'; entries for other tenants need a site admin"
            ),
        ))
    }
}

/// `GET /pods/images`.
pub async fn list_images(st: &AppState, ctx: &Ctx) -> Result<Outcome, ApiError> {
    let mut entries = entries_for(st, &ctx.caller.tenant).await?;
    entries.sort_by(|a, b| a.image.cmp(&b.image));
    let list: Vec<Value> = entries.iter().map(render).collect();
    let n = list.len();
    Ok(Outcome::success(Value::Array(list), format!("{n} images retrieved")))
}

/// `GET /pods/images/{image}`: the tenant's own entry, else the site-wide one.
pub async fn get_image(st: &AppState, ctx: &Ctx, image: &str) -> Result<Outcome, ApiError> {
    let entries = entries_for(st, &ctx.caller.tenant).await?;
    match entries.iter().find(|i| i.image == image) {
        Some(img) => Ok(Outcome::success(render(img), "image retrieved")),
        None => Err(ApiError::not_found(format!("image '{image}' is not on the allowlist"))),
    }
}

/// Adds `list` (validated, scopes checked) all or nothing: a duplicate refuses the whole
/// list unless duplicates are skipped. Returns the entries added.
async fn add_all(st: &AppState, ctx: &Ctx, list: Vec<NewImage>, skip_duplicates: bool) -> Result<Vec<Image>, ApiError> {
    let mut by_scope: Vec<(String, Vec<NewImage>)> = Vec::new();
    for new in list {
        let scope = scope_of(ctx, &new)?;
        match by_scope.iter_mut().find(|(s, _)| *s == scope) {
            Some((_, items)) => items.push(new),
            None => by_scope.push((scope, vec![new])),
        }
    }
    // Duplicates are checked in every scope before anything is written.
    for (scope, items) in &by_scope {
        let current = load_scope(st, scope).await?.value;
        if !skip_duplicates && let Some(dup) = items.iter().find(|n| current.iter().any(|i| i.image == n.image.trim()))
        {
            return Err(ApiError::conflict(format!("image '{}' is already on the allowlist", dup.image.trim())));
        }
    }
    let mut added = Vec::new();
    for (scope, items) in by_scope {
        added.extend(add_to_scope(st, ctx, &scope, items).await?);
    }
    Ok(added)
}

/// Appends the entries of `items` that the scope does not list yet (compare-and-set).
async fn add_to_scope(st: &AppState, ctx: &Ctx, scope: &str, items: Vec<NewImage>) -> Result<Vec<Image>, ApiError> {
    for _ in 0..MAX_ATTEMPTS {
        let current = load_scope(st, scope).await?;
        let mut next = current.value.clone();
        let mut added = Vec::new();
        for new in &items {
            let image = new.image.trim().to_string();
            if next.iter().any(|i| i.image == image) {
                continue;
            }
            let tenants = if new.tenants.is_empty() { vec![ctx.caller.tenant.clone()] } else { new.tenants.clone() };
            let img = Image {
                image,
                tenants,
                description: new.description.clone(),
                added_by: ctx.caller.user.clone(),
                creation_ts: now_ms(),
            };
            next.push(img.clone());
            added.push(img);
        }
        if added.is_empty() {
            return Ok(added);
        }
        let json = serde_json::to_string(&next).map_err(|e| ApiError::bad_request(format!("cannot encode: {e}")))?;
        match st.store().put_doc(IMAGES_KIND, scope, &json, current.version).await {
            Ok(_) => {
                st.allowlists().invalidate(scope);
                for img in &added {
                    tracing::info!(image = %img.image, scope, by = %ctx.caller.user, "image allowed");
                }
                return Ok(added);
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict("the images allowlist is being changed concurrently; try again"))
}

/// `POST /pods/images` (tenant admins).
pub async fn add_image(st: &AppState, ctx: &Ctx, new: NewImage) -> Result<Outcome, ApiError> {
    require_admin(ctx)?;
    let problems = new.validate("");
    if !problems.is_empty() {
        return Err(ApiError::invalid("image", problems));
    }
    let img =
        add_all(st, ctx, vec![new], false).await?.pop().ok_or_else(|| ApiError::conflict("image already listed"))?;
    Ok(Outcome::success(render(&img), "image added"))
}

/// `POST /pods/images/bulk?skip_duplicates=` (tenant admins): all or nothing.
pub async fn add_images(
    st: &AppState,
    ctx: &Ctx,
    list: Vec<NewImage>,
    skip_duplicates: bool,
) -> Result<Outcome, ApiError> {
    require_admin(ctx)?;
    let problems: Vec<_> = list.iter().enumerate().flat_map(|(i, n)| n.validate(&format!("{i}."))).collect();
    if !problems.is_empty() {
        return Err(ApiError::invalid("images", problems));
    }
    let added: Vec<Value> = add_all(st, ctx, list, skip_duplicates).await?.iter().map(render).collect();
    let n = added.len();
    Ok(Outcome::success(Value::Array(added), format!("{n} images added")))
}

/// `DELETE /pods/images/{image}` (tenant admins; site-wide entries: site admins).
pub async fn delete_image(st: &AppState, ctx: &Ctx, image: &str) -> Result<Outcome, ApiError> {
    require_admin(ctx)?;
    let mut scopes = vec![ctx.caller.tenant.as_str()];
    if ctx.caller.site_admin {
        scopes.push(GLOBAL_SCOPE);
    }
    for scope in scopes {
        for _ in 0..MAX_ATTEMPTS {
            let current = load_scope(st, scope).await?;
            let next: Vec<&Image> = current.value.iter().filter(|i| i.image != image).collect();
            if next.len() == current.value.len() {
                break;
            }
            let json =
                serde_json::to_string(&next).map_err(|e| ApiError::bad_request(format!("cannot encode: {e}")))?;
            match st.store().put_doc(IMAGES_KIND, scope, &json, current.version).await {
                Ok(_) => {
                    st.allowlists().invalidate(scope);
                    tracing::info!(image, scope, by = %ctx.caller.user, "image removed from the allowlist");
                    return Ok(Outcome::success(Value::String(String::new()), "image deleted"));
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
    Err(ApiError::not_found(format!("image '{image}' is not on this tenant's allowlist")))
}

#[cfg(test)]
mod tests;
