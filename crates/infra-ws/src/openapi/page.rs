//! `GET /docs`: the OpenAPI document as one self-contained HTML page, rendered on the server.
//! It loads nothing from anywhere (no script, no font, no CDN), so it works offline and behind
//! any firewall a self-hosted server sits behind. Everything taken from the document is
//! HTML-escaped; text between backticks is shown as code.

use std::fmt::Write;

use serde_json::Value;

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];

const STYLE: &str = "
body { font: 15px/1.5 system-ui, sans-serif; color: #1d232a; background: #fafbfc; margin: 0; }
main { max-width: 60rem; margin: 0 auto; padding: 1.5rem; }
h1 { margin-bottom: 0.2rem; }
h2 { border-bottom: 1px solid #d0d7de; padding-bottom: 0.3rem; margin-top: 2.5rem; }
section.operation { background: #fff; border: 1px solid #d0d7de; border-radius: 6px;
  padding: 0.2rem 1rem 0.8rem; margin: 1rem 0; }
section.operation h3 { font-size: 1.1rem; }
h4 { margin: 0.8rem 0 0.3rem; }
code, pre { font: 13px/1.4 ui-monospace, monospace; }
code { background: #eef1f4; padding: 0 0.2rem; border-radius: 3px; }
pre { background: #f3f5f7; padding: 0.6rem; overflow-x: auto; border-radius: 4px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 0.25rem 0.5rem;
  border-bottom: 1px solid #e3e7eb; }
.method { display: inline-block; min-width: 4rem; text-align: center; color: #fff;
  border-radius: 3px; font-weight: 600; font-size: 0.85rem; padding: 0.05rem 0.3rem; }
.get { background: #1f6feb; } .post { background: #1a7f37; } .patch { background: #9a6700; }
.put { background: #8250df; } .delete { background: #cf222e; }
.access { font-size: 0.9rem; color: #57606a; }
nav li { list-style: none; margin: 0.15rem 0; }
nav ul { padding-left: 0; }
";

/// The page for `document`, an OpenAPI document as JSON.
pub fn render(document: &Value) -> String {
    let info = &document["info"];
    let title = text(&info["title"]);
    let version = text(&info["version"]);
    let mut page = String::new();
    page.push_str("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = write!(
        page,
        "<title>{} {} HTTP API</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
        escape(title),
        escape(version)
    );
    let _ = write!(
        page,
        "<h1>{} {} HTTP API</h1>\n<p>{}</p>\n<p>The same description for programs: \
         <a href=\"/openapi.json\"><code>/openapi.json</code></a> (OpenAPI {}).</p>\n",
        escape(title),
        escape(version),
        inline(text(&info["description"])),
        escape(text(&document["openapi"]))
    );
    let operations = operations(document);
    page.push_str("<nav>\n<h2>Operations</h2>\n<ul>\n");
    for operation in &operations {
        let _ = writeln!(
            page,
            "<li><a href=\"#{}\">{} <code>{}</code></a> {}</li>",
            escape(&operation.anchor),
            method_badge(operation.method),
            escape(operation.path),
            escape(text(&operation.value["summary"]))
        );
    }
    page.push_str("</ul>\n</nav>\n");
    let mut tag = None;
    for operation in &operations {
        if tag != Some(operation.tag) {
            tag = Some(operation.tag);
            let _ = writeln!(page, "<h2>{}</h2>", escape(operation.tag));
            if let Some(description) = tag_description(document, operation.tag) {
                let _ = writeln!(page, "<p>{}</p>", inline(description));
            }
        }
        render_operation(&mut page, operation);
    }
    render_schemas(&mut page, &document["components"]["schemas"]);
    page.push_str("</main>\n</body>\n</html>\n");
    page
}

struct Operation<'a> {
    method: &'a str,
    path: &'a str,
    tag: &'a str,
    anchor: String,
    value: &'a Value,
}

/// Every operation, grouped by tag in the document's order of tags, then by path and method.
fn operations(document: &Value) -> Vec<Operation<'_>> {
    let mut operations = Vec::new();
    let Some(paths) = document["paths"].as_object() else {
        return operations;
    };
    for (path, item) in paths {
        for method in METHODS {
            let value = &item[*method];
            if value.is_null() {
                continue;
            }
            let anchor = match value["operationId"].as_str() {
                Some(id) => id.to_owned(),
                None => format!("{method} {path}"),
            };
            operations.push(Operation {
                method,
                path,
                tag: value["tags"][0].as_str().unwrap_or("other"),
                anchor,
                value,
            });
        }
    }
    let tags: Vec<&str> = document["tags"]
        .as_array()
        .map(|tags| tags.iter().filter_map(|tag| tag["name"].as_str()).collect())
        .unwrap_or_default();
    let rank = |tag: &str| {
        tags.iter()
            .position(|name| *name == tag)
            .unwrap_or(tags.len())
    };
    operations.sort_by_key(|operation| rank(operation.tag));
    operations
}

fn tag_description<'a>(document: &'a Value, tag: &str) -> Option<&'a str> {
    document["tags"]
        .as_array()?
        .iter()
        .find(|candidate| candidate["name"] == tag)?["description"]
        .as_str()
}

fn render_operation(page: &mut String, operation: &Operation<'_>) {
    let value = operation.value;
    let _ = writeln!(
        page,
        "<section class=\"operation\" id=\"{}\">\n<h3>{} <code>{}</code></h3>",
        escape(&operation.anchor),
        method_badge(operation.method),
        escape(operation.path)
    );
    let _ = writeln!(
        page,
        "<p><strong>{}</strong></p>",
        inline(text(&value["summary"]))
    );
    if let Some(description) = value["description"].as_str() {
        let _ = writeln!(page, "<p>{}</p>", inline(description));
    }
    let needs_token = value["security"]
        .as_array()
        .is_some_and(|requirements| !requirements.is_empty());
    page.push_str(if needs_token {
        "<p class=\"access\">Needs a token when authentication is on: \
         <code>Authorization: Bearer &lt;token&gt;</code>.</p>\n"
    } else {
        "<p class=\"access\">Public: no token needed.</p>\n"
    });
    if let Some(parameters) = value["parameters"]
        .as_array()
        .filter(|list| !list.is_empty())
    {
        page.push_str(
            "<h4>Parameters</h4>\n<table>\n<tr><th>name</th><th>in</th><th>type</th>\
             <th>required</th><th>description</th></tr>\n",
        );
        for parameter in parameters {
            let _ = writeln!(
                page,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(text(&parameter["name"])),
                escape(text(&parameter["in"])),
                escape(&type_name(&parameter["schema"])),
                if parameter["required"] == true {
                    "yes"
                } else {
                    "no"
                },
                inline(text(&parameter["description"]))
            );
        }
        page.push_str("</table>\n");
    }
    if let Some(body) = value.get("requestBody") {
        page.push_str("<h4>Request body</h4>\n");
        let required = if body["required"] == true {
            "required"
        } else {
            "optional"
        };
        for (media_type, content) in body["content"].as_object().into_iter().flatten() {
            let _ = writeln!(
                page,
                "<p>{} as <code>{}</code>, {required}.{}</p>",
                schema_link(&content["schema"]),
                escape(media_type),
                body["description"]
                    .as_str()
                    .map(|description| format!(" {}", inline(description)))
                    .unwrap_or_default()
            );
        }
    }
    page.push_str(
        "<h4>Responses</h4>\n<table>\n<tr><th>status</th><th>description</th><th>body</th></tr>\n",
    );
    for (status, response) in value["responses"].as_object().into_iter().flatten() {
        let bodies: Vec<String> = response["content"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(media_type, content)| {
                format!(
                    "{} <code>{}</code>",
                    schema_link(&content["schema"]),
                    escape(media_type)
                )
            })
            .collect();
        let headers: Vec<String> = response["headers"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, header)| {
                format!(
                    "<br>Header <code>{}</code>: {}",
                    escape(name),
                    inline(text(&header["description"]))
                )
            })
            .collect();
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}{}</td><td>{}</td></tr>",
            escape(status),
            answers(text(&response["description"])),
            headers.concat(),
            bodies.join("<br>")
        );
    }
    page.push_str("</table>\n</section>\n");
}

fn render_schemas(page: &mut String, schemas: &Value) {
    let Some(schemas) = schemas.as_object() else {
        return;
    };
    page.push_str("<h2>Schemas</h2>\n");
    for (name, schema) in schemas {
        let json = serde_json::to_string_pretty(schema).unwrap_or_default();
        let _ = writeln!(
            page,
            "<section id=\"schema-{0}\">\n<h3>{0}</h3>\n<pre>{1}</pre>\n</section>",
            escape(name),
            escape(&json)
        );
    }
}

fn method_badge(method: &str) -> String {
    format!(
        "<span class=\"method {}\">{}</span>",
        escape(method),
        escape(&method.to_uppercase())
    )
}

/// A schema's name, linked to its section, or its type when it is not a named one.
fn schema_link(schema: &Value) -> String {
    match schema["$ref"].as_str().and_then(schema_name) {
        Some(name) => format!("<a href=\"#schema-{0}\"><code>{0}</code></a>", escape(name)),
        None => format!("<code>{}</code>", escape(&type_name(schema))),
    }
}

fn schema_name(reference: &str) -> Option<&str> {
    reference.strip_prefix("#/components/schemas/")
}

/// A short name for a schema's type: its own name, or its type and format, such as
/// `string (uuid)`.
fn type_name(schema: &Value) -> String {
    if let Some(name) = schema["$ref"].as_str().and_then(schema_name) {
        return name.to_owned();
    }
    let kind = match &schema["type"] {
        Value::String(kind) => kind.clone(),
        Value::Array(kinds) => kinds
            .iter()
            .filter_map(Value::as_str)
            .filter(|kind| *kind != "null")
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "any".to_owned(),
    };
    match schema["format"].as_str() {
        Some(format) => format!("{kind} ({format})"),
        None => kind,
    }
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// An answer's description: the codes it can carry, each with when (`code`: when; `other`:
/// when), one a line.
fn answers(text: &str) -> String {
    text.split("; `")
        .enumerate()
        .map(|(index, piece)| {
            if index == 0 {
                inline(piece)
            } else {
                inline(&format!("`{piece}"))
            }
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

/// `text` escaped, with spans between backticks shown as code. A backtick left unpaired stays
/// as it is.
fn inline(text: &str) -> String {
    let pieces: Vec<&str> = text.split('`').collect();
    let paired = pieces.len() % 2 == 1;
    let mut html = String::with_capacity(text.len());
    for (index, piece) in pieces.iter().enumerate() {
        let last = index + 1 == pieces.len();
        if index % 2 == 1 && (paired || !last) {
            let _ = write!(html, "<code>{}</code>", escape(piece));
        } else {
            if index % 2 == 1 {
                html.push('`');
            }
            html.push_str(&escape(piece));
        }
    }
    html
}

/// `text` safe to put in HTML, in text or in a quoted attribute.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_from_the_document_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        let document = serde_json::json!({
            "openapi": "3.1.0",
            "info": {"title": "<script>", "version": "1", "description": "a `<b>` c"},
            "paths": {"/x/{id}\"><script>": {"get": {
                "summary": "<img src=x>",
                "parameters": [{"name": "<p>", "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": {"description": "<em>"}}
            }}}
        });
        let page = render(&document);
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(!page.contains("<em>"), "{page}");
        assert!(page.contains("<code>&lt;p&gt;</code>"), "{page}");
        assert!(page.contains("a <code>&lt;b&gt;</code> c"), "{page}");
    }

    #[test]
    fn each_code_of_an_answer_is_on_a_line_of_its_own() {
        assert_eq!(
            answers("`a`: one; `b`: two; three"),
            "<code>a</code>: one<br><code>b</code>: two; three"
        );
        assert_eq!(answers("Created"), "Created");
    }

    #[test]
    fn backticks_mark_code_and_an_unpaired_one_stays() {
        assert_eq!(inline("a `b` c"), "a <code>b</code> c");
        assert_eq!(inline("`a` and `b`"), "<code>a</code> and <code>b</code>");
        assert_eq!(inline("a `b"), "a `b");
        assert_eq!(inline("`a` `b"), "<code>a</code> `b");
        assert_eq!(inline("plain"), "plain");
    }
}
