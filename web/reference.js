// The API reference page (reference.html): renders openapi.json — operations by tag with their
// access, parameters and limits, request bodies, responses and examples, then every schema —
// from the worker's own copy of the document. Plain DOM, no framework, nothing from a CDN.

// The worker serves the document at /api/openapi.json; the build also copies it beside the
// page (/openapi.json), which is what `npm run dev` has until that route exists.
const SOURCES = ["/api/openapi.json", "/openapi.json"];
const METHODS = ["get", "head", "post", "put", "patch", "delete"];

let doc;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** Text with `code` spans, as the document's descriptions use them. */
function prose(text, tag = "p") {
  if (!text) return null;
  const parts = String(text).split(/(`[^`]*`)/);
  return el(tag, { class: "prose" }, parts.map((p) => (p.startsWith("`") && p.endsWith("`") && p.length > 1 ? el("code", {}, p.slice(1, -1)) : p)));
}

function deref(node) {
  let name = null;
  while (node && node.$ref) {
    name = node.$ref.split("/").pop();
    node = node.$ref
      .slice(2)
      .split("/")
      .reduce((n, k) => n?.[k.replace(/~1/g, "/").replace(/~0/g, "~")], doc);
  }
  return { node: node || {}, name };
}

/** Appends children, flattening arrays and skipping empty ones (DOM `append` does neither). */
const add = (parent, ...children) => parent.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));

const anchor = (kind, name) => `${kind}-${String(name).replace(/[^A-Za-z0-9_-]/g, "_")}`;
const schemaLink = (name) => el("a", { href: `#${anchor("schema", name)}`, class: "ref" }, name);

/** A one-line summary of a schema: type, limits, pattern, enum, format, default. */
function summary(schema) {
  if (!schema) return "";
  if (schema.$ref) return schemaLink(schema.$ref.split("/").pop());
  const bits = [];
  const alt = schema.anyOf || schema.oneOf;
  if (alt) {
    return el("span", {}, alt.map((s, i) => [i ? " | " : "", summary(s)]));
  }
  // allOf narrows a shared schema (the error codes of one status): show what it narrows.
  if (schema.allOf) {
    const parts = schema.allOf.map(summary).filter((x) => x !== "any");
    return el("span", {}, parts.map((x, i) => [i ? " & " : "", x]), parts.length < schema.allOf.length ? " (narrowed)" : "");
  }
  if ("const" in schema) bits.push(`= ${JSON.stringify(schema.const)}`);
  if (schema.type) bits.push([].concat(schema.type).join(" | "));
  if (schema.type === "array" && schema.items) {
    return el("span", {}, "array of ", summary(schema.items), limits(schema) ? ` (${limits(schema)})` : "");
  }
  if (schema.format) bits.push(`(${schema.format})`);
  if (schema.enum) bits.push(`one of ${schema.enum.map((v) => JSON.stringify(v)).join(", ")}`);
  const l = limits(schema);
  if (l) bits.push(l);
  if (schema.pattern) bits.push(`matching /${schema.pattern}/`);
  if (schema.not?.pattern) bits.push(`not matching /${schema.not.pattern}/`);
  if ("default" in schema) bits.push(`default ${JSON.stringify(schema.default)}`);
  return bits.join(" ") || "any";
}

function limits(s) {
  const out = [];
  if (s.minimum !== undefined && s.maximum !== undefined) out.push(`${s.minimum}–${s.maximum}`);
  else if (s.minimum !== undefined) out.push(`≥ ${s.minimum}`);
  else if (s.maximum !== undefined) out.push(`≤ ${s.maximum}`);
  if (s.minLength !== undefined || s.maxLength !== undefined) out.push(`${s.minLength ?? 0}–${s.maxLength ?? "∞"} chars`);
  if (s.minItems !== undefined || s.maxItems !== undefined) out.push(`${s.minItems ?? 0}–${s.maxItems ?? "∞"} items`);
  return out.join(", ");
}

/** A schema as a nested list of its properties (objects) or its summary (anything else). */
function schemaTree(schema, depth = 0) {
  if (!schema) return el("span", {}, "any");
  if (schema.$ref || depth > 6) return summary(schema);
  if (schema.type === "object" || schema.properties) {
    const required = new Set(schema.required || []);
    const rows = Object.entries(schema.properties || {}).map(([name, sub]) =>
      el(
        "li",
        {},
        el("code", { class: "prop" }, name),
        required.has(name) ? el("span", { class: "req" }, " required") : "",
        " ",
        sub.$ref || !(sub.type === "object" || sub.properties) ? summary(sub) : "object",
        sub.description ? prose(sub.description, "span") : "",
        !sub.$ref && (sub.type === "object" || sub.properties) ? schemaTree(sub, depth + 1) : "",
      ),
    );
    const extra =
      schema.additionalProperties && typeof schema.additionalProperties === "object"
        ? el("li", {}, el("code", { class: "prop" }, "{name}"), " ", summary(schema.additionalProperties))
        : schema.additionalProperties === false
          ? null
          : el("li", { class: "muted" }, "other fields are kept");
    return el("ul", { class: "tree" }, rows, extra);
  }
  return el("span", {}, summary(schema));
}

const pre = (value) => el("pre", { class: "example" }, typeof value === "string" ? value : JSON.stringify(value, null, 2));

function parametersTable(params) {
  if (!params.length) return null;
  return el(
    "table",
    { class: "params" },
    el("thead", {}, el("tr", {}, el("th", {}, "name"), el("th", {}, "in"), el("th", {}, "schema and limits"), el("th", {}, "what"))),
    el(
      "tbody",
      {},
      params.map((p) =>
        el(
          "tr",
          {},
          el("td", {}, el("code", {}, p.name), p.required ? el("span", { class: "req" }, " required") : ""),
          el("td", {}, p.in),
          el("td", {}, summary(p.schema), p.example !== undefined ? el("div", { class: "muted" }, "example: ", el("code", {}, JSON.stringify(p.example))) : ""),
          el("td", {}, prose(p.description, "span") || ""),
        ),
      ),
    ),
  );
}

function content(media) {
  return Object.entries(media || {}).map(([type, m]) =>
    el(
      "div",
      { class: "media" },
      el("div", {}, el("code", { class: "type" }, type), " ", m.schema ? summary(m.schema) : ""),
      m.schema && !m.schema.$ref && (m.schema.properties || m.schema.items) ? schemaTree(m.schema) : null,
      m.example !== undefined ? el("details", {}, el("summary", {}, "example"), pre(m.example)) : null,
    ),
  );
}

function operation(path, method, op) {
  const params = (op.parameters || []).map((p) => deref(p).node);
  const access = op["x-r2d1-access"];
  const body = op.requestBody ? deref(op.requestBody).node : null;
  const responses = Object.entries(op.responses || {}).map(([status, raw]) => {
    const { node, name } = deref(raw);
    const headers = Object.entries(node.headers || {}).map(([h, v]) =>
      el("li", {}, el("code", {}, h), deref(v).node.required ? el("span", { class: "req" }, " always") : "", " ", summary(deref(v).node.schema)),
    );
    return el(
      "tr",
      {},
      el("td", { class: `status s${status[0]}` }, status),
      el(
        "td",
        {},
        prose(node.description, "span"),
        name ? el("span", { class: "muted" }, " (", name, ")") : "",
        headers.length ? el("ul", { class: "headers" }, headers) : "",
        content(node.content),
      ),
    );
  });
  return el(
    "section",
    { class: "op", id: anchor("op", op.operationId) },
    el(
      "h3",
      {},
      el("span", { class: `method m-${method}` }, method.toUpperCase()),
      " ",
      el("code", { class: "path" }, path),
      " ",
      el("span", { class: `access a-${access}`, title: "x-r2d1-access" }, access),
    ),
    el("p", { class: "summary" }, op.summary),
    prose(op.description),
    params.length ? el("h4", {}, "Parameters") : null,
    parametersTable(params),
    body ? el("h4", {}, "Request body", body.required ? "" : " (optional)") : null,
    body ? prose(body.description) : null,
    body ? content(body.content) : null,
    el("h4", {}, "Responses"),
    el("table", { class: "responses" }, el("tbody", {}, responses)),
  );
}

function render() {
  const main = document.getElementById("content");
  const nav = document.getElementById("nav");
  main.replaceChildren();
  nav.replaceChildren();
  document.title = `${doc.info.title} API reference`;
  add(main, el("h1", {}, `${doc.info.title} API `, el("span", { class: "muted" }, doc.info.version)), prose(doc.info.summary), prose(doc.info.description));

  const schemes = Object.entries(doc.components?.securitySchemes || {});
  add(
    main,
    el("h2", { id: "security" }, "Authentication"),
    el("ul", {}, schemes.map(([name, s]) => el("li", {}, el("code", {}, name), ` (${s.type}${s.scheme ? ` ${s.scheme}` : ""}${s.in ? ` in ${s.in} ${s.name}` : ""}) `, prose(s.description, "span")))),
  );

  const byTag = new Map((doc.tags || []).map((t) => [t.name, []]));
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const m of METHODS) {
      if (!item[m]) continue;
      const tag = item[m].tags?.[0] || "Other";
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push([path, m, item[m]]);
    }
  }
  for (const [tag, ops] of byTag) {
    if (!ops.length) continue;
    const info = (doc.tags || []).find((t) => t.name === tag);
    add(main, el("h2", { id: anchor("tag", tag) }, tag), prose(info?.description), ops.map(([p, m, op]) => operation(p, m, op)));
    add(
      nav,
      el("h2", {}, el("a", { href: `#${anchor("tag", tag)}` }, tag)),
      el(
        "ul",
        {},
        ops.map(([p, m, op]) => el("li", {}, el("a", { href: `#${anchor("op", op.operationId)}` }, el("span", { class: `method m-${m}` }, m.toUpperCase()), " ", p))),
      ),
    );
  }

  add(main, el("h2", { id: "schemas" }, "Schemas"));
  add(nav, el("h2", {}, el("a", { href: "#schemas" }, "Schemas")));
  for (const [name, schema] of Object.entries(doc.components?.schemas || {})) {
    add(
      main,
      el(
        "section",
        { class: "schema", id: anchor("schema", name) },
        el("h3", {}, name),
        prose(schema.description),
        schema.properties || schema.type === "object" ? schemaTree(schema) : el("p", {}, summary(schema)),
        schema.example !== undefined ? el("details", {}, el("summary", {}, "example"), pre(schema.example)) : null,
      ),
    );
  }
  if (location.hash) document.getElementById(location.hash.slice(1))?.scrollIntoView();
}

async function load() {
  for (const url of SOURCES) {
    try {
      const res = await fetch(url, { headers: { accept: "application/json" } });
      if (res.ok) return res.json();
    } catch {
      // try the next source
    }
  }
  throw new Error("openapi.json could not be loaded");
}

load()
  .then((d) => {
    doc = d;
    render();
  })
  .catch((e) => {
    document.getElementById("content").replaceChildren(el("p", { role: "alert", class: "error" }, e.message));
  });
