//! Server-rendered HTML of the approvers' page: one layout, escaped text
//! everywhere, landmarks, headings, labelled controls and table headers.

use std::fmt::Write as _;

use crate::audit::AuditEntry;
use crate::operations::{forbidden_char, Operation, Status};
use crate::users::CiContext;
use crate::util::rfc3339_ms;

use super::session::Flash;

/// Escapes text for HTML element content and quoted attribute values.
/// Control and bidirectional-formatting characters (which the API refuses
/// in descriptions, but which can still arrive in a client id, a token's
/// claims or an old database) are shown visibly as `[U+202E]` instead of
/// being rendered: they could reorder or hide what an approver reads.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if forbidden_char(c).is_some() => {
                let _ = write!(out, "[U+{:04X}]", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a path segment or query value.
pub fn url_enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// "1h 02m", "4m 10s", "12s", or "expired".
pub fn time_left(ms: u64) -> String {
    let s = ms / 1000;
    if ms == 0 {
        "expired".into()
    } else if s >= 3600 {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Who is looking at a page (for the header).
pub struct Viewer<'a> {
    /// User name.
    pub user: &'a str,
    /// Sees the audit log.
    pub admin: bool,
    /// CSRF token for the logout form.
    pub csrf: &'a str,
}

/// The common layout. `body` is already HTML.
pub fn page(title: &str, viewer: Option<&Viewer>, flash: Option<&Flash>, body: &str) -> String {
    let mut nav = String::new();
    if let Some(v) = viewer {
        let _ = write!(
            nav,
            r#"<nav aria-label="Main"><ul>
<li><a href="/ui/">Operations</a></li>{audit}
</ul>
<form class="logout" method="post" action="/ui/logout">
<input type="hidden" name="csrf" value="{csrf}">
<span>Logged in as <strong id="whoami">{user}</strong></span>
<button type="submit" id="logout">Log out</button>
</form></nav>"#,
            audit = if v.admin {
                r#"<li><a href="/ui/audit">Audit log</a></li>"#
            } else {
                ""
            },
            csrf = esc(v.csrf),
            user = esc(v.user),
        );
    }
    let flash = flash
        .map(|f| {
            format!(
                r#"<p class="flash {cls}" id="flash" role="{role}">{text}</p>"#,
                cls = if f.ok { "ok" } else { "refused" },
                role = if f.ok { "status" } else { "alert" },
                text = esc(&f.text)
            )
        })
        .unwrap_or_default();
    format!(
        r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · keyclient</title>
<link rel="stylesheet" href="/ui/static/keyclient.css">
<script src="/ui/static/keyclient.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to the content</a>
<header>
<p class="brand">keyclient <span>· ks-devserver approvals (development only)</span></p>
{nav}
</header>
<main id="main">
<h1>{title}</h1>
{flash}
{body}
</main>
</body>
</html>
"##,
        title = esc(title),
    )
}

/// The login form.
pub fn login(csrf: &str, username: &str, error: Option<&str>, info: Option<&str>) -> String {
    let err = error
        .map(|e| {
            format!(
                r#"<p class="flash refused" id="login-error" role="alert">{}</p>"#,
                esc(e)
            )
        })
        .unwrap_or_default();
    let info = info
        .map(|i| {
            format!(
                r#"<p class="flash ok" id="login-info" role="status">{}</p>"#,
                esc(i)
            )
        })
        .unwrap_or_default();
    let invalid = if error.is_some() {
        r#" aria-invalid="true" aria-describedby="login-error""#
    } else {
        ""
    };
    let body = format!(
        r#"{info}{err}
<form class="login" method="post" action="/ui/login">
<input type="hidden" name="csrf" value="{csrf}">
<p><label for="username">User name</label>
<input id="username" name="username" value="{username}" autocomplete="username" required autofocus{invalid}></p>
<p><label for="password">Password (the user's client secret)</label>
<input id="password" name="password" type="password" autocomplete="current-password" required{invalid}></p>
<p><button type="submit" id="login">Log in</button></p>
</form>
<p class="hint">Demo users log in with their client secret, e.g. <code>approver-key4</code> / <code>approver-key4-secret</code>.</p>"#,
        csrf = esc(csrf),
        username = esc(username),
    );
    page("Log in", None, None, &body)
}

/// What the viewer may do with one operation (decided by dry runs of the
/// API's own rules).
#[derive(Debug, Clone)]
pub struct OpView {
    /// The operation.
    pub op: Operation,
    /// Its state now.
    pub status: Status,
    /// Milliseconds until it expires (0 when expired).
    pub left_ms: u64,
    /// Approving would change something.
    pub can_approve: bool,
    /// Rejecting would change something.
    pub can_reject: bool,
    /// Why not, when the viewer holds an approve right but cannot act.
    pub note: Option<String>,
}

fn keys_list(op: &Operation) -> String {
    let mut s = String::from("<ul class=\"keys\">");
    for k in &op.keys {
        let by = if k.approvedby.is_empty() {
            String::new()
        } else {
            format!(" by {}", esc(&k.approvedby.join(", ")))
        };
        let _ = write!(
            s,
            r#"<li data-key="{id}"><strong>{id}</strong>: used <span class="used">{u}</span> of {m}; approvals <span class="approvals">{a}</span> of {r}{by}</li>"#,
            id = esc(&k.keyid),
            u = k.usagecount,
            m = k.maxusagecount,
            a = k.approvedby.len(),
            r = k.requiredapprovals,
        );
    }
    s.push_str("</ul>");
    s
}

/// Rejected, expired or used up: nothing can happen to it any more, so no
/// time left is shown.
fn finished(status: Status) -> bool {
    matches!(
        status,
        Status::Rejected | Status::Expired | Status::Exhausted
    )
}

/// The "Time left" cell's content: a countdown, or why there is none.
fn left_html(v: &OpView) -> String {
    if finished(v.status) {
        format!(r#"<span class="finished">— ({})</span>"#, v.status.name())
    } else {
        format!(
            r#"<time class="left" datetime="{exp}" data-expires-ms="{exp_ms}">{left}</time>"#,
            exp = esc(&rfc3339_ms(v.op.expires_ms())),
            exp_ms = v.op.expires_ms(),
            left = esc(&time_left(v.left_ms)),
        )
    }
}

/// Where an operation comes from, in words, from its creator's CI context.
pub fn context_text(c: &CiContext) -> String {
    let get = |k: &str| c.claims.get(k).map(String::as_str);
    let (system, parts) = match c.system.as_str() {
        "gitlab" => (
            "GitLab CI",
            [
                ("project", get("project_path")),
                ("ref", get("ref")),
                ("pipeline", get("pipeline_id")),
                ("started by", get("user_login")),
            ],
        ),
        _ => (
            "GitHub Actions",
            [
                ("repository", get("repository")),
                ("ref", get("ref")),
                ("run", get("run_id")),
                ("started by", get("actor")),
            ],
        ),
    };
    let parts: Vec<String> = parts
        .iter()
        .filter_map(|(label, v)| v.map(|v| format!("{label} {v}")))
        .collect();
    format!("{system}: {}", parts.join(", "))
}

/// The creator and, when known, where the request comes from.
fn creator_html(op: &Operation) -> String {
    match &op.createdcontext {
        Some(c) => format!(
            r#"{}<div class="context" data-system="{}">{}</div>"#,
            esc(&op.createdby),
            esc(&c.system),
            esc(&context_text(c))
        ),
        None => esc(&op.createdby),
    }
}

fn actions(v: &OpView) -> String {
    let id = url_enc(&v.op.id);
    let mut s = String::new();
    if v.can_approve {
        let _ = write!(
            s,
            r#"<a class="button approve" id="approve-{raw}" href="/ui/operations/{id}/approve">Approve<span class="visually-hidden"> operation {raw}</span>…</a> "#,
            raw = esc(&v.op.id)
        );
    }
    if v.can_reject {
        let _ = write!(
            s,
            r#"<a class="button reject" id="reject-{raw}" href="/ui/operations/{id}/reject">Reject<span class="visually-hidden"> operation {raw}</span>…</a>"#,
            raw = esc(&v.op.id)
        );
    }
    if let Some(n) = &v.note {
        let _ = write!(s, r#"<p class="note">{}</p>"#, esc(n));
    }
    if s.is_empty() {
        s.push_str("<span class=\"note\">—</span>");
    }
    s
}

/// The operations table (also sent to the polling script to replace the
/// live region's content).
pub fn ops_section(views: &[OpView], admin: bool) -> String {
    let caption = if admin {
        "Every operation, newest first"
    } else {
        "Pending operations you may act on, and your own"
    };
    if views.is_empty() {
        return format!(
            r#"<p id="no-operations">{}</p>"#,
            if admin {
                "There are no operations."
            } else {
                "Nothing is waiting for you."
            }
        );
    }
    let mut rows = String::new();
    for v in views {
        let _ = writeln!(
            rows,
            r#"<tr id="op-{id}" data-status="{status}">
<th scope="row">{id}</th>
<td class="description">{desc}</td>
<td class="creator">{creator}</td>
<td>{keys}</td>
<td class="status">{status}</td>
<td class="time-left">{left}</td>
<td class="actions">{actions}</td>
</tr>"#,
            id = esc(&v.op.id),
            desc = esc(&v.op.description),
            creator = creator_html(&v.op),
            keys = keys_list(&v.op),
            status = v.status.name(),
            left = left_html(v),
            actions = actions(v),
        );
    }
    format!(
        r#"<table id="operations">
<caption>{caption}</caption>
<thead><tr><th scope="col">Operation</th><th scope="col">Description</th><th scope="col">Created by (where from)</th><th scope="col">Keys (used / approvals)</th><th scope="col">Status</th><th scope="col">Time left</th><th scope="col">Actions</th></tr></thead>
<tbody>
{rows}</tbody>
</table>"#
    )
}

/// The list page: a live region the script refreshes when `version` changes.
pub fn ops_page(viewer: &Viewer, flash: Option<&Flash>, views: &[OpView], version: &str) -> String {
    let body = format!(
        r#"<section id="live" aria-live="polite" aria-labelledby="ops-heading" data-version="{version}" data-state-url="/ui/state.json">
<h2 id="ops-heading" class="visually-hidden">Operations list</h2>
<div id="ops">{table}</div>
</section>
<p class="hint">This page follows changes by itself (it asks the server every two seconds).</p>"#,
        version = esc(version),
        table = ops_section(views, viewer.admin),
    );
    page("Operations", Some(viewer), flash, &body)
}

/// The confirmation page of an approval or rejection.
pub fn confirm_page(viewer: &Viewer, v: &OpView, approve: bool) -> String {
    let verb = if approve { "Approve" } else { "Reject" };
    let id = esc(&v.op.id);
    let consequence = if approve {
        "Your approval counts for every key of this operation you are an approver of."
    } else {
        "A rejection is final: the operation can never be used for signing."
    };
    let body = format!(
        r#"<dl class="operation">
<dt>Description</dt><dd id="description">{desc}</dd>
<dt>Created by</dt><dd id="creator">{creator}</dd>
<dt>Comes from</dt><dd id="context">{context}</dd>
<dt>Status</dt><dd>{status}</dd>
<dt>Time left</dt><dd>{left}</dd>
<dt>Keys</dt><dd>{keys}</dd>
</dl>
<p>{consequence}</p>
<form method="post" action="/ui/operations/{url_id}/{action}">
<input type="hidden" name="csrf" value="{csrf}">
<button type="submit" id="confirm" class="{action}">{verb} operation {id}</button>
<a href="/ui/" id="cancel">Cancel</a>
</form>"#,
        desc = esc(&v.op.description),
        creator = esc(&v.op.createdby),
        context = match &v.op.createdcontext {
            Some(c) => esc(&context_text(c)),
            None => "no CI details: the creator's token carried none (client credentials)".into(),
        },
        status = v.status.name(),
        left = left_html(v),
        keys = keys_list(&v.op),
        url_id = url_enc(&v.op.id),
        action = if approve { "approve" } else { "reject" },
        csrf = esc(viewer.csrf),
    );
    page(
        &format!("{verb} operation {}?", v.op.id),
        Some(viewer),
        None,
        &body,
    )
}

/// A refusal or error page.
pub fn message_page(viewer: Option<&Viewer>, title: &str, text: &str) -> String {
    let link = if viewer.is_some() {
        r#"<a href="/ui/">Back to the operations</a>"#
    } else {
        r#"<a href="/ui/login">Go to the login page</a>"#
    };
    let body = format!(
        r#"<p class="flash refused" id="error" role="alert">{}</p>
<p>{link}</p>"#,
        esc(text)
    );
    page(title, viewer, None, &body)
}

/// Audit-log filters (exact matches; empty = any).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Key id.
    pub key: String,
    /// Principal.
    pub user: String,
    /// Operation id.
    pub operation: String,
    /// Action (`token`, `create`, `approve`, ...).
    pub action: String,
}

impl AuditFilter {
    /// Does `e` pass? `op_keys` are the keys of the entry's operation: an
    /// entry matches a key filter when it names the key or its operation
    /// uses it (approvals and creations concern every key of the operation).
    pub fn matches(&self, e: &AuditEntry, op_keys: &[String]) -> bool {
        let ok = |want: &str, have: Option<&str>| want.is_empty() || have == Some(want);
        (ok(&self.key, e.key.as_deref()) || op_keys.contains(&self.key))
            && ok(&self.user, Some(&e.who))
            && ok(&self.operation, e.operation.as_deref())
            && ok(&self.action, Some(&e.action))
    }
}

/// Where an audit-log page sits among the matching entries.
#[derive(Debug, Clone, Default)]
pub struct AuditNav {
    /// Entries per page.
    pub size: usize,
    /// Index (newest first, from 0) of the page's first entry.
    pub first: usize,
    /// For the "Newer" link: the page's first sequence number, if there are newer entries.
    pub newer_after: Option<u64>,
    /// For the "Older" link: the page's last sequence number, if there are older entries.
    pub older_before: Option<u64>,
}

impl AuditFilter {
    /// The filters and `size` as a query string (kept across pages).
    fn query(&self, size: usize) -> String {
        let mut q = String::new();
        for (k, v) in [
            ("key", &self.key),
            ("user", &self.user),
            ("operation", &self.operation),
            ("action", &self.action),
        ] {
            if !v.is_empty() {
                let _ = write!(q, "{k}={}&", url_enc(v));
            }
        }
        let _ = write!(q, "size={size}");
        q
    }
}

fn audit_nav(filter: &AuditFilter, nav: &AuditNav) -> String {
    let base = format!("/ui/audit?{}", filter.query(nav.size));
    let mut links = Vec::new();
    if nav.first > 0 {
        links.push(format!(
            r#"<a id="audit-newest" href="{}">Newest</a>"#,
            esc(&base)
        ));
    }
    if let Some(a) = nav.newer_after {
        links.push(format!(
            r#"<a id="audit-newer" rel="prev" href="{}">← Newer</a>"#,
            esc(&format!("{base}&after={a}"))
        ));
    }
    if let Some(b) = nav.older_before {
        links.push(format!(
            r#"<a id="audit-older" rel="next" href="{}">Older →</a>"#,
            esc(&format!("{base}&before={b}"))
        ));
    }
    if links.is_empty() {
        return String::new();
    }
    format!(
        r#"<nav class="pages" aria-label="Audit log pages"><p>{}</p></nav>"#,
        links.join(" · ")
    )
}

/// The audit log page (admins): one page of the entries matching `filter`.
pub fn audit_page(
    viewer: &Viewer,
    filter: &AuditFilter,
    entries: &[AuditEntry],
    total: usize,
    nav: &AuditNav,
) -> String {
    let field = |id: &str, label: &str, value: &str| {
        format!(
            r#"<p><label for="f-{id}">{label}</label> <input id="f-{id}" name="{id}" value="{v}"></p>"#,
            v = esc(value)
        )
    };
    let mut rows = String::new();
    for e in entries {
        let _ = writeln!(
            rows,
            r#"<tr><td>{seq}</td><td><time datetime="{at}">{at}</time></td><td>{who}</td><td>{action}{via}</td><td>{op}</td><td>{key}</td><td>{outcome}</td></tr>"#,
            seq = e.seq,
            at = esc(&e.at),
            who = esc(&e.who),
            action = esc(&e.action),
            via = e
                .via
                .as_deref()
                .map(|v| format!(" <small>(via {})</small>", esc(v)))
                .unwrap_or_default(),
            op = esc(e.operation.as_deref().unwrap_or("")),
            key = esc(e.key.as_deref().unwrap_or("")),
            outcome = esc(&e.outcome),
        );
    }
    let table = if entries.is_empty() {
        r#"<p id="no-entries">No entry matches.</p>"#.to_string()
    } else {
        format!(
            r#"<table id="audit">
<caption>{from}–{to} of {total} entries, newest first</caption>
<thead><tr><th scope="col">#</th><th scope="col">Time</th><th scope="col">User</th><th scope="col">Action</th><th scope="col">Operation</th><th scope="col">Key</th><th scope="col">Outcome</th></tr></thead>
<tbody>
{rows}</tbody>
</table>"#,
            from = nav.first + 1,
            to = nav.first + entries.len(),
        )
    };
    let body = format!(
        r#"<form class="filter" method="get" action="/ui/audit" role="search" aria-label="Filter the audit log">
{key}{user}{op}{action}
<p><label for="f-size">Entries per page</label> <input id="f-size" name="size" type="number" min="1" max="500" value="{size}"></p>
<p><button type="submit" id="filter">Filter</button> <a href="/ui/audit">Clear</a></p>
</form>
{table}
{pages}"#,
        size = nav.size,
        pages = audit_nav(filter, nav),
        key = field("key", "Key", &filter.key),
        user = field("user", "User", &filter.user),
        op = field("operation", "Operation", &filter.operation),
        action = field("action", "Action", &filter.action),
    );
    page("Audit log", Some(viewer), None, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_durations() {
        assert_eq!(
            esc(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(url_enc("a b/ü"), "a%20b%2F%C3%BC");
        assert_eq!(
            esc("fw \u{202E}nib.exe\0\n — ü"),
            "fw [U+202E]nib.exe[U+0000][U+000A] — ü"
        );
        assert_eq!(time_left(0), "expired");
        assert_eq!(time_left(12_500), "12s");
        assert_eq!(time_left(250_000), "4m 10s");
        assert_eq!(time_left(3_720_000), "1h 02m");
    }
}
